"""What travels between the pipeline's stages: one ``StepWork`` per step, one ``CameraInput`` per camera in it.

Each stage fills in its field (detections, embeddings, tracks, floor points, global ids); the last one turns the
step into its typed ``StepResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.identity_embed import Choice
from gateway.settle import Settlement
from gateway.step import CameraStep, StepResult
from spoton.domain import Detections, FloorPoints, Tracks
from spoton.v1 import common_pb2


@dataclass
class CameraInput:
    """One camera's frame at a step and what the stages found in it so far."""

    camera_id: str
    frame: common_pb2.Frame
    detections: Detections | None = None
    embeddings: np.ndarray | None = None  # tracking embeddings, float32 (N detections, D); (0, 0) when none needed
    tracks: Tracks | None = None
    floor: FloorPoints | None = None  # one point per track; None for an uncalibrated camera
    global_ids: np.ndarray | None = None  # int64 (N tracks,), 0 = none
    # False when the detection schedule skipped this frame: no detections or embeddings, the tracker predicts.
    detected: bool = True
    next_skipped: bool = False  # the schedule will surely skip this camera's next frame (fixed mode, in period)
    thumb: np.ndarray | None = None  # the frame's motion thumbnail (motion schedule only), uint8 (120, 160)
    grey: np.ndarray | None = None  # the frame for optical flow (flow prediction only), uint8 half size
    # Tracks chosen for an identity embedding this step (gateway.identity_embed), set by the identity stage.
    identity: list[Choice] = field(default_factory=list)

    def result(self) -> CameraStep:
        """This camera's typed result (after association)."""
        tracks = self.tracks if self.tracks is not None else Tracks.empty()
        n = len(tracks)
        floor = self.floor
        return CameraStep(
            camera_id=self.camera_id,
            frame_index=int(self.frame.frame_index),
            timestamp_ns=int(self.frame.timestamp_ns),
            track_id=tracks.track_id,
            global_id=self.global_ids if self.global_ids is not None else np.zeros(n, np.int64),
            xyxy=tracks.xyxy,
            confidence=tracks.confidence,
            floor_xy_m=floor.xy_m if floor is not None else np.zeros((n, 2)),
            floor_valid=floor.valid if floor is not None else np.zeros(n, bool),
        )


@dataclass
class StepWork:
    """One step on its way through the stages."""

    step: int
    timestamp_ns: int  # the latest of the step's frame times, Unix ns
    cameras: list[CameraInput]
    stage_ms: dict[str, float] = field(default_factory=dict)
    started: float = 0.0  # perf_counter when its frames were read
    result: StepResult | None = None  # set by the last stage
    # What reid's reply settled (gateway.settle); ``final``: the end-of-session settlement, no step of its own.
    settlement: Settlement | None = None
    final: bool = False

    def finish(self, session_id: str) -> StepResult:
        """The step's typed result, from what every stage filled in."""
        self.result = StepResult(session_id, self.step, self.timestamp_ns, tuple(c.result() for c in self.cameras))
        return self.result
