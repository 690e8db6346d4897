"""Per-camera trackers from boxmot's registry, fed with the detections and the embeddings reid_svc computed.

Nothing here loads ReID weights: appearance trackers get precomputed embeddings through boxmot's structured
``Detections``. Defaults come from boxmot's own per-tracker YAML configs; SpotOn overrides only what does not fit
static cameras and this detector (DESIGN §11) and whatever the caller passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from boxmot import create_tracker
from boxmot.structures.detections import Detections as BoxmotDetections
from boxmot.structures.geometry import Boxes
from boxmot.trackers import registry
from boxmot.trackers.common.association.matching import iou_distance
from boxmot.trackers.config import load_tracker_config
from boxmot.trackers.specs import TrackerSpec

from spoton.bootstrap.errors import NotFoundError
from spoton.domain import Detections, Tracks
from spoton.v1 import tracking_pb2
from tracking_svc.config import BOX_BLEND

# Static cameras: camera-motion compensation is pointless; people score 0.3-0.6 with the default detector.
# ByteTrack's track_thresh 0.4 (boxmot: 0.45): over the whole demo (4 cameras) IDF1 0.641 vs 0.645 at 0.5, and on
# PETS09-S2L1 with our detector IDF1 0.570 vs 0.498 at 0.5 (bench/tracking_eval.py; README tracking table).
SPOTON_OVERRIDES: dict[str, dict[str, Any]] = {
    "botsort": {"use_cmc": False, "track_high_thresh": 0.4, "new_track_thresh": 0.45, "track_low_thresh": 0.1},
    "bytetrack": {"min_conf": 0.1, "track_thresh": 0.4},
}
CONFIRM_HITS = 3
MAX_BRIDGED_GAP = 30
# Trackers that need a ReID model or extra inputs we do not provide.
UNSUPPORTED = {"sam2mot"}


def available_trackers() -> list[str]:
    return sorted(n for n in registry.TRACKER_DEFINITIONS if n not in UNSUPPORTED)


def default_options(name: str) -> dict[str, Any]:
    """boxmot's config defaults for ``name`` with SpotOn's overrides applied."""
    if name not in available_trackers():
        raise ValueError(f"unknown tracker {name!r}; available: {', '.join(available_trackers())}")
    definition = registry.get_tracker_definition(name)
    defaults = load_tracker_config(definition.config_name or definition.name, None, {})
    defaults.update(SPOTON_OVERRIDES.get(name, {}))
    return defaults


def uses_embeddings(name: str) -> bool:
    caps = registry.get_tracker_definition(name).capabilities
    return bool(caps.accepts_embeddings)


@dataclass
class CameraTracker:
    """One camera's tracker plus the per-track bookkeeping boxmot's output does not carry."""

    name: str
    tracker: Any
    needs_embeddings: bool
    last_frame_index: int = 0
    first_seen: dict[int, int] = field(default_factory=dict)
    hits: dict[int, int] = field(default_factory=dict)
    frames: int = 0
    emb_dim: int = 1
    released_at: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fps: float = 0.0
    id_offset: int = 0
    restarts: int = 0
    last_timestamp_ns: int = 0
    box_blend: float = BOX_BLEND

    @classmethod
    def create(
        cls, name: str, options: dict[str, Any] | None = None, fps: float = 0.0, box_blend: float = BOX_BLEND
    ) -> CameraTracker:
        name = (name or "").lower()
        config_keys = set(default_options(name))
        opts = dict(SPOTON_OVERRIDES.get(name, {}))
        if "use_cmc" in config_keys:
            opts["use_cmc"] = False
        if fps and "frame_rate" in config_keys:
            opts["frame_rate"] = max(1, round(fps))
        for key, value in (options or {}).items():
            if key not in config_keys:
                raise ValueError(f"tracker {name!r} has no option {key!r}; options: {', '.join(sorted(config_keys))}")
            opts[key] = (
                int(value)
                if isinstance(value, float) and value.is_integer() and key.endswith(("buffer", "rate", "age", "hits"))
                else value
            )
        try:
            tracker = create_tracker(TrackerSpec(name=name, options=tuple(sorted(opts.items()))))
        except TypeError as exc:
            raise ValueError(f"bad options for tracker {name!r}: {exc}") from exc
        return cls(
            name=name,
            tracker=tracker,
            needs_embeddings=bool(tracker.requirements.embeddings),
            options=dict(options or {}),
            fps=fps,
            box_blend=box_blend,
        )

    def update(
        self,
        dets: Detections,
        embeddings: np.ndarray | None,
        frame_wh: tuple[int, int],
        frame_index: int,
        timestamp_ns: int = 0,
        show_births: bool = False,
    ) -> Tracks:
        """Advance one frame.

        Args:
            dets: this frame's detections (pixels).
            embeddings: (N, D) float32 aligned with ``dets``; required by appearance trackers when N > 0.
            frame_wh: source frame size in pixels.
            frame_index: source frame number (gaps mean dropped frames; the tracker predicts through them).
            timestamp_ns: media time; when given with a known fps, a jump back or further than the tracker can
                bridge restarts the track state even if frame indices look continuous.
            show_births: the tracks born on this frame come back now instead of from their second matched frame
                (``_show_births``): for a frame whose next one carries these detections forward (the gateway's
                ``TrackFrame.births_confirmed_next``), where that second match would add no evidence.
        """
        if embeddings is not None and len(embeddings) and len(embeddings) != len(dets):
            raise ValueError(f"{len(embeddings)} embeddings for {len(dets)} detections")
        if embeddings is not None and embeddings.size:
            if embeddings.ndim != 2 or (self.emb_dim > 1 and embeddings.shape[1] != self.emb_dim):
                raise ValueError(f"embeddings must be (N, {self.emb_dim}), got {embeddings.shape}")
            if not np.isfinite(embeddings).all():
                raise ValueError("embeddings must be finite")
        self._check_continuity(frame_index, timestamp_ns)
        keep = (dets.xyxy[:, 2] > dets.xyxy[:, 0]) & (dets.xyxy[:, 3] > dets.xyxy[:, 1])
        index = np.flatnonzero(keep)
        emb = None
        if self.needs_embeddings:
            if embeddings is None or (len(embeddings) == 0 and len(dets)):
                raise ValueError(f"tracker {self.name} needs embeddings with every detection")
            if embeddings.ndim == 2 and embeddings.shape[1]:
                self.emb_dim = embeddings.shape[1]
            emb = torch.from_numpy(
                np.ascontiguousarray(embeddings[index], np.float32).reshape(len(index), self.emb_dim)
            )
        w, h = frame_wh
        if w <= 0 or h <= 0:
            raise ValueError(f"frame size must be positive, got {w}x{h}")
        # Gaps: let the Kalman filters predict through the missing frames (no detections); a gap longer than the
        # tracker can bridge is a restart.
        gap = frame_index - self.last_frame_index - 1 if self.last_frame_index else 0
        if gap > MAX_BRIDGED_GAP:
            self.restart()
            gap = 0
        image = np.zeros((h, w, 3), np.uint8)
        for _ in range(min(max(gap, 0), 30)):
            self._step(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0), None, image)
        out = self._step(dets.xyxy[index], dets.confidence[index], dets.class_id[index], emb, image)
        self.last_frame_index = frame_index
        self.last_timestamp_ns = timestamp_ns
        ids = out.track_ids.numpy().astype(np.int64)
        det_idx = out.detection_indices.numpy().astype(np.int64)
        xyxy = out.to_aabb_rows()[:, :4].numpy() if len(ids) else np.zeros((0, 4), np.float32)
        scores, classes = out.scores.numpy(), out.class_ids.numpy()
        if show_births:
            born = self._show_births()
            if born:
                ids = np.concatenate([ids, np.array([int(t.id) for t in born], np.int64)])
                det_idx = np.concatenate([det_idx, np.array([int(t.det_ind) for t in born], np.int64)])
                xyxy = np.concatenate([xyxy, np.array([t.xyxy for t in born], np.float32).reshape(-1, 4)])
                scores = np.concatenate([scores, np.array([float(t.conf) for t in born], scores.dtype)])
                classes = np.concatenate([classes, np.array([int(t.cls) for t in born], classes.dtype)])
        det_idx = np.where(det_idx >= 0, index[np.clip(det_idx, 0, max(len(index) - 1, 0))] if len(index) else -1, -1)
        for tid, di in zip(ids.tolist(), det_idx.tolist(), strict=True):
            self.first_seen.setdefault(tid, self.frames)
            if di >= 0:
                self.hits[tid] = self.hits.get(tid, 0) + 1
        hits = np.array([self.hits.get(t, 0) for t in ids.tolist()], np.int32)
        state = np.where(hits >= CONFIRM_HITS, tracking_pb2.TRACK_STATE_CONFIRMED, tracking_pb2.TRACK_STATE_TENTATIVE)
        state = np.where(det_idx < 0, tracking_pb2.TRACK_STATE_LOST, state)
        matched = det_idx >= 0
        if self.box_blend and matched.any():
            xyxy = xyxy.copy()
            xyxy[matched] = (1 - self.box_blend) * xyxy[matched] + self.box_blend * dets.xyxy[det_idx[matched]]
        return Tracks(
            xyxy=xyxy,
            track_id=ids + self.id_offset,
            confidence=scores,
            class_id=classes,
            state=state,
            age=[self.frames - self.first_seen[t] + 1 for t in ids.tolist()],
            hits=hits,
            det_index=det_idx,
        )

    def _show_births(self) -> list:
        """The tracks born on the frame just updated, to be shown now (STrack-based trackers; others: none).

        ByteTrack and BoT-SORT hold a new track back until a second detection matches it; when the next frame's
        detections are this frame's carried forward by optical flow, that match only repeats this one, so the
        track is as good as confirmed here. It is only shown: left unactivated, the tracker associates it next
        frame exactly as before, after its tracked and lost tracks (activating it let it take the carried detection
        from a lost track that would have been re-found: replay, whole demo video, cam1 5 more ID switches, IDF1
        0.715 -> 0.701). A birth overlapping a lost track's box waits for its second match, since that lost track
        may claim the detection next frame and the shown ID would last one frame (cam1: 31 -> 25 switches, recall
        0.870 -> 0.864, against 0.856 without births shown).
        """
        tr = self.tracker
        if not self.can_predict:
            return []
        born = [t for t in tr.active_tracks if not t.is_activated and getattr(t, "start_frame", -1) == tr.frame_count]
        if born and tr.lost_stracks:
            free = iou_distance(born, list(tr.lost_stracks)).min(axis=1) >= 1.0
            born = [t for t, ok in zip(born, free, strict=True) if ok]
        return born

    def _check_continuity(self, frame_index: int, timestamp_ns: int) -> None:
        """Restart when the frame index goes back, or media time jumps back or further than can be bridged."""
        if frame_index <= 0:
            raise ValueError(f"frame_index must be >= 1, got {frame_index}")
        if self.last_frame_index and frame_index <= self.last_frame_index:
            self.restart()
        if timestamp_ns and self.last_timestamp_ns and self.fps:
            dt_s = (timestamp_ns - self.last_timestamp_ns) / 1e9
            if dt_s <= 0 or dt_s * self.fps > MAX_BRIDGED_GAP + 1:
                self.restart()

    @property
    def can_predict(self) -> bool:
        """Whether ``predict`` works for this tracker (the STrack-based ones: ByteTrack, BoT-SORT)."""
        return hasattr(self.tracker, "active_tracks") and hasattr(self.tracker, "lost_stracks")

    def predict(self, frame_wh: tuple[int, int], frame_index: int, timestamp_ns: int = 0) -> Tracks:
        """Advance one frame on which no detection ran: every track's Kalman filter predicts without a
        measurement (as boxmot's own update does before association) and the confirmed, tracked tracks come back
        with their predicted boxes and unchanged IDs (``det_index`` -1, state CONFIRMED/TENTATIVE by hits).

        Unlike an update with no detections, nothing is marked lost: the next detected frame associates against
        the predicted states (its own update predicts one more frame, so after k frames the filters have predicted
        k times). The tracker's frame counter advances, so lost tracks still expire after ``track_buffer`` frames.
        BoT-SORT needs no embedding here: no detection is associated.
        """
        if not self.can_predict:
            raise ValueError(
                f"tracker {self.name} cannot predict frames without detections; detect every frame with it "
                "(detection_schedule fixed, detect_every 1) or use bytetrack or botsort"
            )
        w, h = frame_wh
        if w <= 0 or h <= 0:
            raise ValueError(f"frame size must be positive, got {w}x{h}")
        self._check_continuity(frame_index, timestamp_ns)
        gap = frame_index - self.last_frame_index - 1 if self.last_frame_index else 0
        if gap > MAX_BRIDGED_GAP:
            self.restart()
            gap = 0
        tr = self.tracker
        tracked = [t for t in tr.active_tracks if t.is_activated]
        pool = tracked + list(tr.lost_stracks)
        for _ in range(1 + max(gap, 0)):
            self.frames += 1
            tr.frame_count += 1
            if pool:
                type(pool[0]).multi_predict(pool, dt=None)
        self.last_frame_index = frame_index
        self.last_timestamp_ns = timestamp_ns
        if not tracked:
            return Tracks.empty()
        ids = np.array([int(t.id) for t in tracked], np.int64)
        for tid in ids.tolist():
            self.first_seen.setdefault(tid, self.frames)
        hits = np.array([self.hits.get(t, 0) for t in ids.tolist()], np.int32)
        xyxy = np.array([t.xyxy for t in tracked], np.float32).reshape(-1, 4)
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2])
        return Tracks(
            xyxy=xyxy,
            track_id=ids + self.id_offset,
            confidence=np.array([float(t.conf) for t in tracked], np.float32),
            class_id=np.array([int(t.cls) for t in tracked], np.int32),
            state=np.where(
                hits >= CONFIRM_HITS, tracking_pb2.TRACK_STATE_CONFIRMED, tracking_pb2.TRACK_STATE_TENTATIVE
            ),
            age=[self.frames - self.first_seen[t] + 1 for t in ids.tolist()],
            hits=hits,
            det_index=np.full(len(ids), -1, np.int32),
        )

    def restart(self) -> None:
        """The camera restarted (frame index went back, or a gap too long to bridge): fresh state, new ids."""
        seen = [t + self.id_offset for t in self.first_seen]
        self.id_offset = max(seen, default=self.id_offset - 1) + 1
        self.tracker = CameraTracker.create(self.name, self.options, self.fps).tracker
        self.first_seen, self.hits, self.restarts = {}, {}, self.restarts + 1
        self.last_frame_index = self.last_timestamp_ns = 0

    def _step(self, xyxy, conf, cls, emb, image):  # type: ignore[no-untyped-def]
        self.frames += 1
        dets = BoxmotDetections(
            geometry=Boxes(torch.from_numpy(np.ascontiguousarray(xyxy, np.float32)).reshape(-1, 4)),
            scores=torch.from_numpy(np.asarray(conf, np.float32)),
            class_ids=torch.from_numpy(np.asarray(cls, np.int64)),
            sample_id=f"f{self.frames}",
            embeddings=emb if emb is not None and self.needs_embeddings else None,
        )
        if self.needs_embeddings and dets.embeddings is None:
            dets = dets.with_embeddings(torch.zeros((0, self.emb_dim)))
        return self.tracker.update(dets, image)


class TrackerRegistry:
    """Live trackers by (session, camera); a released one is kept ``grace_s`` for a reconnecting stream."""

    def __init__(self, grace_s: float, box_blend: float = BOX_BLEND) -> None:
        self.grace_s = grace_s
        self.box_blend = box_blend
        self._trackers: dict[tuple[str, str], CameraTracker] = {}

    def acquire(
        self, session_id: str, camera_id: str, name: str, options: dict[str, Any], fps: float
    ) -> tuple[CameraTracker, bool]:
        """The tracker for this stream and whether it was resumed."""
        if not session_id or not camera_id:
            raise ValueError("TrackStart needs session_id and camera_id")
        self.expire()
        key = (session_id, camera_id)
        existing = self._trackers.get(key)
        if existing is not None and existing.released_at is not None and existing.name == name:
            existing.released_at = None
            return existing, True
        tracker = CameraTracker.create(name, options, fps, self.box_blend)
        self._trackers[key] = tracker
        return tracker, False

    def release(self, session_id: str, camera_id: str) -> None:
        tracker = self._trackers.get((session_id, camera_id))
        if tracker is not None:
            tracker.released_at = time.monotonic()

    def get(self, session_id: str, camera_id: str) -> CameraTracker:
        try:
            return self._trackers[(session_id, camera_id)]
        except KeyError:
            raise NotFoundError(f"no tracker for session {session_id!r} camera {camera_id!r}") from None

    def expire(self) -> None:
        now = time.monotonic()
        for key, tr in list(self._trackers.items()):
            if tr.released_at is not None and now - tr.released_at > self.grace_s:
                del self._trackers[key]

    def __len__(self) -> int:
        return len(self._trackers)
