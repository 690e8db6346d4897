"""Gateway settings (DESIGN §7)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from spoton.bootstrap.settings import CommonSettings
from spoton.sourceurl import parse_cidrs

REPO = Path(__file__).resolve().parent.parent


class GatewaySettings(CommonSettings):
    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(8000, validation_alias="GATEWAY_PORT")
    video_sets_dir: str = str(REPO / "build" / "demo")
    # Steps per second sampled from each source; 0 = the source's own rate.
    target_fps: float = 0.0
    frame_jpeg_quality: int = 85
    tracker_type: str = "bytetrack"
    # Detection scheduling per camera (gateway/schedule.py): fixed | motion | adaptive; DETECT_EVERY is the period
    # (fixed) or the longest run between detections (motion, adaptive); 1 = every frame is detected.
    detection_schedule: Literal["fixed", "motion", "adaptive"] = "fixed"
    # Default: every second frame detected, the previous detections carried into the other by optical flow
    # (README "Real time": half the detection CPU; on 200 steps recall per camera within 0.02 of every frame and
    # multi-camera IDF1 0.767 against 0.616).
    detect_every: int = Field(2, ge=1)
    # Motion mode: share of changed thumbnail pixels (0..1) above which a frame is detected early.
    motion_threshold: float = Field(0.002, ge=0, le=1)
    # How skipped frames get their boxes: the tracker's Kalman prediction, optical flow from the previous frame, or
    # the previous detections moved by optical flow and tracked as that frame's detections (gateway/schedule.py).
    schedule_prediction: Literal["kalman", "flow", "detections"] = "detections"
    # Identity embeddings per track, after tracking (gateway/identity_embed.py): "budget" = at a track's birth, then
    # when its box is unoccluded (no other box covers more than IDENTITY_EMBED_MAX_COVERED of it) and sharp
    # (Laplacian variance >= IDENTITY_EMBED_MIN_SHARPNESS; 0 = not checked) every IDENTITY_EMBED_EVERY_S of media
    # time, at most IDENTITY_EMBED_MAX_PER_STEP crops a step (0 = no cap); "every" = every tracked detection.
    # Defaults measured with bench/identity_budget.py (README "Appearance").
    identity_embed_mode: Literal["budget", "every"] = "budget"
    identity_embed_every_s: float = Field(1.0, ge=0)
    identity_embed_max_covered: float = Field(0.1, ge=0, le=1)
    identity_embed_min_sharpness: float = Field(0.0, ge=0)
    identity_embed_max_per_step: int = Field(0, ge=0)
    redis_url: str = ""
    max_cameras_per_session: int = 16
    max_concurrent_sessions: int = 4
    max_ws_clients_per_session: int = 64
    # Running sessions are marked alive this often; an always-on session silent for 3x this is resumed elsewhere.
    session_heartbeat_s: float = 10.0
    # History older than this many days is deleted (checked every HISTORY_RETENTION_CHECK_S); 0 keeps it forever.
    history_retention_days: float = 0.0
    history_retention_check_s: float = 3600.0
    # On TimescaleDB: history chunks older than this many days are compressed (0 = never), and chunk width in days.
    history_compress_after_days: float = 7.0
    history_chunk_days: float = 1.0
    # Rows emitted are sealed into a batch this often (seconds): spooled to disk, then written. It bounds what a
    # SIGKILLed gateway loses (the loss window).
    history_flush_s: float = 0.5
    # Pending history batches are spooled (append + fsync) under <HISTORY_SPOOL_DIR>/<GATEWAY_ID> before they are
    # written, and replayed at start; default REPO/.spoton/spool. The directories of dead gateways under the same
    # root (a shared volume) are replayed by the survivors. HISTORY_SPOOL=false keeps pending rows in memory only.
    history_spool: bool = True
    history_spool_dir: str = ""
    # This replica's name (its spool directory); default <hostname>-<GATEWAY_PORT>.
    gateway_id: str = ""
    # A running gateway looks this often (seconds) for always-on sessions whose heartbeat stopped, and for dead
    # gateways' spools, and takes them over.
    session_takeover_s: float = 5.0
    history_batch_rows: int = 5000
    # Track points held while the database is away (about 300 bytes each); older ones are dropped beyond it.
    history_max_pending_rows: int = 1_000_000
    rpc_timeout_s: float = 30.0
    # How long a stage may be away (restart, rescheduling) before its session fails, seconds.
    stage_reconnect_timeout_s: float = 60.0
    # Where file sources may live (comma-separated; default VIDEO_SETS_DIR) and which URL schemes live sources may use.
    source_dirs: str = ""
    source_schemes: str = "rtsp,rtsps,http,https"
    # Addresses (comma-separated CIDRs) live sources may reach besides globally routable ones: loopback, private,
    # link-local, ... are refused otherwise (SSRF); cloud metadata addresses only when named as a single address.
    source_allow_cidrs: str = ""
    # Opening a live source, and each read from it, fail after this many seconds.
    source_timeout_s: float = 10.0
    # Comma-separated origins allowed by CORS (browser frontends on other hosts); empty = same origin only.
    cors_origins: str = ""
    # Blur every person on the annotated camera streams, and person thumbnails per PRIVACY_THUMBNAILS: "blur"
    # (crops kept by reid, served blurred) or "refuse" (faces are not stored: no crops collected, thumbnails 403).
    privacy_mode: bool = False
    privacy_thumbnails: Literal["blur", "refuse"] = "blur"
    # Alerts are POSTed here as JSON when set.
    alert_webhook_url: str = ""

    @property
    def collect_crops(self) -> bool:
        """Whether sessions send reid person crops (thumbnails): not when privacy mode forbids storing faces."""
        return not (self.privacy_mode and self.privacy_thumbnails == "refuse")

    @property
    def spool_directory(self) -> Path | None:
        """This replica's history spool, or None when spooling is off."""
        if not self.history_spool:
            return None
        root = Path(self.history_spool_dir) if self.history_spool_dir else REPO / ".spoton" / "spool"
        return root / (self.gateway_id or f"{socket.gethostname()}-{self.gateway_port}")

    @property
    def source_dir_list(self) -> list[str]:
        return [d.strip() for d in self.source_dirs.split(",") if d.strip()] or [self.video_sets_dir]

    @field_validator("source_allow_cidrs")
    @classmethod
    def _check_cidrs(cls, value: str) -> str:
        parse_cidrs(value)
        return value

    @property
    def source_allow_networks(self) -> tuple:
        return parse_cidrs(self.source_allow_cidrs)

    @property
    def source_scheme_list(self) -> list[str]:
        return [x.strip().lower() for x in self.source_schemes.split(",") if x.strip()]

    # --- Auth (DESIGN §3) ---
    # On by default; AUTH=off is an explicit opt-out (a warning at every start).
    auth: bool = True
    # HMAC secret for signed stream URLs (shared by replicas); empty = random per process.
    auth_secret: str = ""
    signed_url_ttl_s: float = 300.0
    ws_ticket_ttl_s: float = 30.0
    # Bearer JWTs: HS256 with JWT_SECRET, or an OIDC issuer's JWKS URL; role from JWT_ROLE_CLAIM (dotted path).
    jwt_secret: str = ""
    jwt_jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: str = "RS256,ES256"
    jwt_role_claim: str = "role"
