"""A session's options resolved once: the request's options over the gateway's settings, in one frozen object."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.config import GatewaySettings
from gateway.identity_embed import IdentityBudget
from gateway.schedule import SchedulePolicy

FRAME_ENCODINGS = ("jpeg", "png", "raw")


@dataclass(frozen=True)
class SessionConfig:
    """What a session runs with (the API's ``SessionOptions`` after defaults from ``GatewaySettings``).

    Attributes:
        media_start_ns: media time of frame 1, Unix ns (now, unless the request gives it).
        max_steps: stop after this many steps; 0 = until the sources end.
        target_fps: steps per second sampled from each source; 0 = the source's own rate.
        loop: file sources restart at their end.
        jpeg_quality: 1..100, for JPEG frames.
        frame_encoding: how frames travel to the stages: ``jpeg``, ``png`` or ``raw``.
        tracker: the boxmot tracker's name.
        tracker_options: passed to the tracker.
        association: passed to reid's association.
        stage_reconnect_timeout_s: how long a stage may be away before the session fails, seconds.
        rpc_timeout_s: deadline of the session's unary calls, seconds.
        collect_crops: whether tracks offer reid crops for thumbnails (not when privacy forbids storing faces).
        schedule: which camera frames are detected (``gateway.schedule``); the rest are predicted by the tracker.
        identity: which tracks get identity embeddings, and when (``gateway.identity_embed``).
    """

    media_start_ns: int
    max_steps: int = 0
    target_fps: float = 0.0
    loop: bool = False
    jpeg_quality: int = 85
    frame_encoding: str = "jpeg"
    tracker: str = "bytetrack"
    tracker_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    association: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    stage_reconnect_timeout_s: float = 60.0
    rpc_timeout_s: float = 30.0
    collect_crops: bool = True
    schedule: SchedulePolicy = field(default_factory=SchedulePolicy)
    identity: IdentityBudget = field(default_factory=IdentityBudget)

    def __post_init__(self) -> None:
        if self.frame_encoding not in FRAME_ENCODINGS:
            raise ValueError(f"frame_encoding must be one of {FRAME_ENCODINGS}, got {self.frame_encoding!r}")

    @classmethod
    def resolve(cls, options: Mapping[str, Any], settings: GatewaySettings) -> SessionConfig:
        """``options`` (the request's, unset or empty ones left out) over ``settings``."""
        return cls(
            media_start_ns=int(options.get("media_start_ns") or time.time_ns()),
            max_steps=int(options.get("max_steps") or 0),
            target_fps=float(options.get("target_fps") or settings.target_fps or 0),
            loop=bool(options.get("loop")),
            jpeg_quality=int(options.get("jpeg_quality") or settings.frame_jpeg_quality),
            frame_encoding=str(options.get("frame_encoding") or "jpeg"),
            tracker=str(options.get("tracker") or settings.tracker_type),
            tracker_options=MappingProxyType(dict(options.get("tracker_options") or {})),
            association=MappingProxyType(dict(options.get("association") or {})),
            stage_reconnect_timeout_s=settings.stage_reconnect_timeout_s,
            rpc_timeout_s=settings.rpc_timeout_s,
            collect_crops=settings.collect_crops,
            schedule=SchedulePolicy(
                mode=str(options.get("detection_schedule") or settings.detection_schedule),
                detect_every=int(options.get("detect_every") or settings.detect_every),
                prediction=str(options.get("schedule_prediction") or settings.schedule_prediction),
                motion_threshold=float(
                    settings.motion_threshold
                    if options.get("motion_threshold") is None
                    else options["motion_threshold"]
                ),
            ),
            identity=IdentityBudget(
                **(
                    {
                        "mode": settings.identity_embed_mode,
                        "every_s": settings.identity_embed_every_s,
                        "max_covered": settings.identity_embed_max_covered,
                        "min_sharpness": settings.identity_embed_min_sharpness,
                        "max_per_step": settings.identity_embed_max_per_step,
                    }
                    | dict(options.get("identity_embedding") or {})
                )
            ),
        )
