"""The typed result of one pipeline step, produced by the last stage (association).

Everything downstream is derived from it: the WebSocket step message (DESIGN §3), the ``track_points`` rows and the
zone detector's input (one floor point per global person), so nothing is rendered to JSON and parsed back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gateway.rows import TrackPoint
from spoton.timeutil import ns_to_dt, ns_to_iso


@dataclass(frozen=True)
class CameraStep:
    """One camera's tracks at one step (N tracks).

    Attributes:
        camera_id: the camera.
        frame_index: 1-based source frame of this step.
        timestamp_ns: media time of the frame, Unix ns.
        track_id: int64 (N,) per-camera track ids.
        global_id: int64 (N,) cross-camera person ids; 0 where association gave none.
        xyxy: float32 (N, 4) boxes in pixels.
        confidence: float32 (N,).
        floor_xy_m: float64 (N, 2) floor points in metres (meaningless where ``floor_valid`` is False).
        floor_valid: bool (N,); False where the camera is uncalibrated or the point is off the floor.
    """

    camera_id: str
    frame_index: int
    timestamp_ns: int
    track_id: np.ndarray
    global_id: np.ndarray
    xyxy: np.ndarray
    confidence: np.ndarray
    floor_xy_m: np.ndarray
    floor_valid: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        n = len(xyxy)
        object.__setattr__(self, "xyxy", xyxy)
        for name, dtype, shape in (
            ("track_id", np.int64, (n,)),
            ("global_id", np.int64, (n,)),
            ("confidence", np.float32, (n,)),
            ("floor_xy_m", np.float64, (n, 2)),
            ("floor_valid", bool, (n,)),
        ):
            arr = np.asarray(getattr(self, name), dtype)
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.xyxy)

    @cached_property
    def _rows(self) -> list[tuple]:
        """Per track, as Python values: track id, global id (None for 0), box rounded to 0.1 px, confidence, and
        the floor point rounded to 1 mm (None where invalid). Computed once: the message and the rows both read it."""
        floors = [
            [round(x, 3), round(y, 3)] if ok else None
            for (x, y), ok in zip(self.floor_xy_m.tolist(), self.floor_valid.tolist(), strict=True)
        ]
        return list(
            zip(
                self.track_id.tolist(),
                [g or None for g in self.global_id.tolist()],
                [[round(v, 1) for v in box] for box in self.xyxy.tolist()],
                self.confidence.tolist(),
                floors,
                strict=True,
            )
        )

    def tracks(self) -> list[dict]:
        """The step message's ``tracks`` of this camera (confidence to 0.001)."""
        return [
            {"track_id": tid, "global_id": gid, "bbox": box, "confidence": round(conf, 3), "floor": floor}
            for tid, gid, box, conf, floor in self._rows
        ]

    def track_points(self, session_id: str, step: int) -> list[TrackPoint]:
        """This camera's ``track_points`` rows (the message's rounding, full confidence)."""
        time = ns_to_dt(self.timestamp_ns)
        return [
            TrackPoint(
                time=time,
                session_id=session_id,
                step=step,
                camera_id=self.camera_id,
                frame_index=self.frame_index,
                track_id=tid,
                global_id=gid,
                bbox=box,
                confidence=conf,
                floor_x_m=floor[0] if floor else None,
                floor_y_m=floor[1] if floor else None,
            )
            for tid, gid, box, conf, floor in self._rows
        ]


@dataclass(frozen=True)
class StepResult:
    """One step of a session over every camera that gave a frame."""

    session_id: str
    step: int
    timestamp_ns: int  # the step's media time: the latest of its frames, Unix ns
    cameras: tuple[CameraStep, ...]

    def message(self) -> dict:
        """The ``step`` message of DESIGN §3."""
        return {
            "type": "step",
            "session_id": self.session_id,
            "step": self.step,
            "timestamp": ns_to_iso(self.timestamp_ns),
            "cameras": {c.camera_id: {"frame_index": c.frame_index, "tracks": c.tracks()} for c in self.cameras},
        }

    def track_points(self) -> list[TrackPoint]:
        return [row for c in self.cameras for row in c.track_points(self.session_id, self.step)]

    def floor_points(self) -> dict[int, np.ndarray]:
        """Global id -> (2,) mean floor point in metres over the cameras that place the person (the zone
        detector's input); people without a global id or a floor point are left out."""
        gids = np.concatenate([c.global_id for c in self.cameras] or [np.zeros(0, np.int64)])
        xy = np.concatenate([c.floor_xy_m for c in self.cameras] or [np.zeros((0, 2))])
        keep = np.concatenate([c.floor_valid for c in self.cameras] or [np.zeros(0, bool)]) & (gids != 0)
        gids, xy = gids[keep], xy[keep]
        return {int(g): xy[gids == g].mean(axis=0) for g in np.unique(gids)}
