"""Gateway settings (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from spoton.bootstrap.settings import CommonSettings

REPO = Path(__file__).resolve().parent.parent


class GatewaySettings(CommonSettings):
    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(8000, validation_alias="GATEWAY_PORT")
    video_sets_dir: str = str(REPO / "build" / "demo")
    # Steps per second sampled from each source; 0 = the source's own rate.
    target_fps: float = 0.0
    frame_jpeg_quality: int = 85
    tracker_type: str = "bytetrack"
    redis_url: str = ""
    max_cameras_per_session: int = 16
    max_concurrent_sessions: int = 4
    history_flush_s: float = 0.5
    history_batch_rows: int = 5000
    rpc_timeout_s: float = 30.0
    # How long a stage may be away (restart, rescheduling) before its session fails, seconds.
    stage_reconnect_timeout_s: float = 60.0
    # Alerts are POSTed here as JSON when set.
    alert_webhook_url: str = ""
