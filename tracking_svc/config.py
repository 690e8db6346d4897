"""Tracking service settings (DESIGN §7)."""

from __future__ import annotations

from pydantic import Field

from spoton.bootstrap.settings import CommonSettings

# A matched track's output box: (1 - w) x the tracker's filtered box + w x its detection. ByteTrack's Kalman state
# (x, y, aspect, height) lags a box whose shape changes (a person walking towards the camera, entering at an edge);
# half way back to the detection (w = 0.5) raised mean output-box recall and MOTA on both demo layouts, every frame
# and with carried detections (bench/schedule_eval.py: demo mean recall 0.844 -> 0.858, MOTA 0.739 -> 0.766; low
# overlap 0.866 -> 0.878, 0.722 -> 0.746). Off by default: through the identity rule (tests/test_identity_eval.py's
# window) live multi-camera IDF1 fell to 0.848, below its 0.87 floor, not yet explained.
BOX_BLEND = 0.0


class TrackingSettings(CommonSettings):
    port: int = Field(50052, validation_alias="TRACKING_SVC_PORT")
    metrics_port: int = Field(9102, validation_alias="TRACKING_SVC_METRICS_PORT")
    tracker_type: str = "bytetrack"
    # Seconds a (session, camera) tracker outlives its stream so a reconnecting client resumes it.
    tracker_resume_grace_s: float = 30.0
    # Weight (0..1) of a matched track's detection in its output box (BOX_BLEND; 0 = the tracker's box as is).
    track_box_blend: float = Field(BOX_BLEND, ge=0.0, le=1.0)
