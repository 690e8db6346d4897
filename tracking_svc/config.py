"""Tracking service settings (DESIGN §7)."""

from __future__ import annotations

from pydantic import Field

from spoton.bootstrap.settings import CommonSettings


class TrackingSettings(CommonSettings):
    port: int = Field(50052, validation_alias="TRACKING_SVC_PORT")
    metrics_port: int = Field(9102, validation_alias="TRACKING_SVC_METRICS_PORT")
    tracker_type: str = "bytetrack"
    # Seconds a (session, camera) tracker outlives its stream so a reconnecting client resumes it.
    tracker_resume_grace_s: float = 30.0
