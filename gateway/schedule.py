"""Per-camera detection scheduling: which camera frames of a step go to the detector (pure logic, no gRPC).

The gateway decides; detection_svc stays stateless. A camera frame that is not detected still goes through every
later stage: tracking_svc advances that camera's Kalman filters without a measurement (``TrackFrame.predict_only``)
and returns the predicted boxes under the same track IDs, so every frame keeps its tracks, floor points and
association; only detection and embedding are skipped for it.

Modes (``DETECTION_SCHEDULE`` / the session option ``detection_schedule``):

- ``fixed``: every ``detect_every``-th frame of a camera is detected (1 = every frame, the default).
- ``motion``: a frame is detected when it differs from the camera's last detected frame by more than
  ``motion_threshold`` (the share of changed pixels of a small grey thumbnail), and at least every
  ``detect_every``-th frame whatever the motion.
- ``adaptive``: every frame while the camera's latest detected tracks are young, crowded or uncertain; otherwise
  every ``detect_every``-th frame.

Adaptive decisions use the tracks the pipeline last reported for the camera; steps are pipelined, so that report
is a few steps old (the decision lags by at most the pipeline's depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spoton.domain import Tracks

SCHEDULES = ("fixed", "motion", "adaptive")
# Motion thumbnails: this many pixels wide and high (grey, INTER_AREA), and the grey-level change that counts a
# pixel as changed (0..255).
THUMB_WH = (160, 120)
PIXEL_CHANGE = 12
# Adaptive: a track younger than this many frames is young; this many tracks is a crowd; a matched track scoring
# below this, or any detected-frame track left without a detection, is uncertain.
YOUNG_AGE = 8
CROWD = 8
UNCERTAIN_CONF = 0.35


def motion_thumb(image_bgr: np.ndarray) -> np.ndarray:
    """A frame's motion thumbnail: uint8 (120, 160) grey, area-averaged (noise averages out)."""
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    return cv2.resize(grey, THUMB_WH, interpolation=cv2.INTER_AREA)


def changed_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share (0..1) of thumbnail pixels whose grey level differs by more than ``PIXEL_CHANGE``."""
    return float(np.count_nonzero(cv2.absdiff(a, b) > PIXEL_CHANGE)) / a.size


def tracks_need_detection(tracks: Tracks) -> bool:
    """Adaptive rule on one camera's tracks of a detected frame: young, crowded or uncertain."""
    if len(tracks) == 0:
        return False
    matched = tracks.det_index >= 0
    return bool(
        len(tracks) >= CROWD
        or (tracks.age < YOUNG_AGE).any()
        or (~matched).any()
        or (tracks.confidence[matched] < UNCERTAIN_CONF).any()
    )


@dataclass(frozen=True)
class SchedulePolicy:
    """A session's detection schedule.

    Attributes:
        mode: ``fixed``, ``motion`` or ``adaptive``.
        detect_every: fixed: the period in frames; motion/adaptive: the longest run between detections (>= 1).
        motion_threshold: motion: share (0..1) of changed thumbnail pixels above which a frame is detected.
    """

    mode: str = "fixed"
    detect_every: int = 1
    motion_threshold: float = 0.002

    def __post_init__(self) -> None:
        if self.mode not in SCHEDULES:
            raise ValueError(f"detection_schedule must be one of {SCHEDULES}, got {self.mode!r}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if not 0 <= self.motion_threshold <= 1:
            raise ValueError(f"motion_threshold must be in [0, 1], got {self.motion_threshold}")

    @property
    def every_frame(self) -> bool:
        return self.detect_every == 1


@dataclass
class _CameraState:
    since_detect: int = 0  # frames since the camera's last detected frame (0 = none yet)
    last_thumb: np.ndarray | None = None
    busy: bool = True  # adaptive: the last reported tracks need detection (a camera starts busy)


class DetectionSchedule:
    """Per-camera decisions for one session, and the counts the session summary shows."""

    def __init__(self, policy: SchedulePolicy) -> None:
        self.policy = policy
        self._cams: dict[str, _CameraState] = {}
        self.frames = 0
        self.detected = 0

    def decide(self, camera_id: str, thumb: np.ndarray | None = None) -> bool:
        """Whether this camera's next frame is detected (and note it). ``thumb`` is the frame's ``motion_thumb``
        (motion mode; without one the frame is detected)."""
        st = self._cams.setdefault(camera_id, _CameraState())
        p = self.policy
        due = st.since_detect == 0 or st.since_detect >= p.detect_every
        if p.mode == "motion" and not due:
            due = thumb is None or st.last_thumb is None or changed_share(thumb, st.last_thumb) > p.motion_threshold
        elif p.mode == "adaptive" and not due:
            due = st.busy
        self.frames += 1
        if due:
            self.detected += 1
            st.since_detect = 1
            if thumb is not None:
                st.last_thumb = thumb
        else:
            st.since_detect += 1
        return due

    def observe(self, camera_id: str, tracks: Tracks) -> None:
        """The tracks of a detected frame of this camera (feeds the adaptive mode)."""
        self._cams.setdefault(camera_id, _CameraState()).busy = tracks_need_detection(tracks)

    def summary(self) -> dict:
        return {
            "mode": self.policy.mode,
            "detect_every": self.policy.detect_every,
            "camera_frames": self.frames,
            "detected_frames": self.detected,
            "detected_share": round(self.detected / self.frames, 3) if self.frames else 0.0,
        }
