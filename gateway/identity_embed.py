"""Which tracks get an identity embedding this step, and each track's latest one (pure; no gRPC here).

Identity embeddings (reid's network, for cross-camera association) are spent per *track*, after tracking, under a
budget, instead of on every detection before tracking:
  * at birth: the first step a track is seen with a detection (the identity gallery matches a new track by its
    appearance then);
  * again when it is clean — unoccluded (no other box of the camera covers more than ``max_covered`` of it) and
    sharp (Laplacian variance at 128 px height at least ``min_sharpness``) — and ``every_s`` of media time have
    passed since its last embedding, or its last one was not clean (a birth behind someone);
  * at most ``max_per_step`` crops per step over all cameras (0 = no cap), births first, then the longest
    waiting.
Only tracks matched to a detection are embedded — on a detected frame, or on a skipped one carrying the previous
detections moved by optical flow (``SCHEDULE_PREDICTION=detections``; tracks are born there too); a Kalman- or
flow-predicted track box alone is not a person's outline.
Association gets each track's latest identity embedding at every step (``latest``), so the gallery sees what it saw
before, at a fraction of the embeddings. ``mode`` ``every`` embeds every matched track at every detected step
(the old cost, for comparison).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spoton.domain import Detections, Tracks
from spoton.frames import covered_shares, sharpness

TrackKey = tuple[str, int]
# Tracks unseen for this long (media time) are forgotten.
FORGET_AFTER_NS = 60_000_000_000
MODES = ("budget", "every")


@dataclass(frozen=True)
class IdentityBudget:
    """The identity-embedding budget of a session (``GatewaySettings.identity_embed_*``, session options)."""

    mode: str = "budget"
    every_s: float = 1.0
    max_covered: float = 0.1
    min_sharpness: float = 0.0
    max_per_step: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"identity embedding mode must be one of {MODES}, got {self.mode!r}")
        if self.every_s < 0 or not 0 <= self.max_covered <= 1 or self.min_sharpness < 0 or self.max_per_step < 0:
            raise ValueError(f"bad identity embedding budget {self}")


@dataclass
class TrackEmbedding:
    """A track's latest identity embedding (D,), when it was taken (media ns), whether its crop was clean."""

    embedding: np.ndarray | None = None
    taken_ns: int = 0
    clean: bool = False
    seen_ns: int = 0


@dataclass
class Choice:
    """One crop to embed: the camera, the track, its detection's box (4,) in pixels, whether the crop is clean."""

    camera_id: str
    track_id: int
    xyxy: np.ndarray
    clean: bool
    birth: bool
    waited_ns: int


@dataclass
class IdentityEmbedder:
    """The budget's bookkeeping for one session: what each track was last embedded with, and when."""

    budget: IdentityBudget = field(default_factory=IdentityBudget)
    tracks: dict[TrackKey, TrackEmbedding] = field(default_factory=dict)
    embedded: int = 0  # crops embedded so far
    candidates: int = 0  # matched tracks on detected frames so far (what ``every`` would embed)

    def choose(
        self,
        camera_id: str,
        ts_ns: int,
        tracks: Tracks,
        detections: Detections,
        image: Callable[[], np.ndarray],
    ) -> list[Choice]:
        """The tracks of one detected camera frame due for an identity embedding, before the per-step cap.

        ``image()`` returns the decoded BGR frame; it is only called when a crop's sharpness decides."""
        b = self.budget
        matched = [k for k in range(len(tracks)) if 0 <= int(tracks.det_index[k]) < len(detections)]
        self.candidates += len(matched)
        if not matched:
            return []
        det_idx = np.array([int(tracks.det_index[k]) for k in matched])
        boxes = detections.xyxy[det_idx]
        # Occluders: every other detection of the frame (tracked or not) and predicted tracks without one.
        unmatched_dets = np.setdiff1d(np.arange(len(detections)), det_idx)
        others = np.concatenate([detections.xyxy[unmatched_dets], tracks.xyxy[tracks.det_index < 0]])
        covered = covered_shares(boxes, others)
        frame: np.ndarray | None = None
        out = []
        for j, k in enumerate(matched):
            key = (camera_id, int(tracks.track_id[k]))
            state = self.tracks.setdefault(key, TrackEmbedding())
            state.seen_ns = ts_ns
            birth = state.embedding is None
            waited = ts_ns - state.taken_ns
            unoccluded = bool(covered[j] <= b.max_covered)
            if b.mode == "every" or birth:
                due = True
            else:
                due = unoccluded and (not state.clean or waited >= b.every_s * 1e9)
            if not due:
                continue
            clean = unoccluded
            if clean and b.min_sharpness > 0:
                frame = image() if frame is None else frame
                clean = crop_sharpness(frame, boxes[j]) >= b.min_sharpness
                if not clean and not birth and b.mode != "every":
                    continue
            out.append(Choice(camera_id, key[1], boxes[j], clean, birth, waited if not birth else 0))
        return out

    def cap(self, choices: list[Choice]) -> list[Choice]:
        """At most ``max_per_step`` of one step's choices (all cameras): births first, then the longest waiting."""
        n = self.budget.max_per_step
        if self.budget.mode == "every" or not n or len(choices) <= n:
            return choices
        return sorted(choices, key=lambda c: (not c.birth, -c.waited_ns))[:n]

    def remember(self, choice: Choice, embedding: np.ndarray, ts_ns: int) -> None:
        """A chosen track's new embedding (D,) taken at ``ts_ns``."""
        state = self.tracks.setdefault((choice.camera_id, choice.track_id), TrackEmbedding())
        state.embedding, state.taken_ns, state.clean = embedding, ts_ns, choice.clean
        self.embedded += 1

    def latest(self, camera_id: str, track_id: int) -> np.ndarray | None:
        state = self.tracks.get((camera_id, int(track_id)))
        return None if state is None else state.embedding

    def forget_old(self, now_ns: int) -> None:
        """Drop tracks unseen for a minute of media time."""
        for key in [k for k, s in self.tracks.items() if now_ns - s.seen_ns > FORGET_AFTER_NS]:
            del self.tracks[key]


def crop_sharpness(image: np.ndarray, xyxy: np.ndarray) -> float:
    """``sharpness`` of one pixel box of a BGR image (clipped to it)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    a, b = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
    c, d = int(np.clip(np.ceil(x2), a + 1, w)), int(np.clip(np.ceil(y2), b + 1, h))
    return sharpness(image[b:d, a:c])
