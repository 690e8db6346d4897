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

How a skipped frame's boxes are made (``SCHEDULE_PREDICTION`` / ``schedule_prediction``): ``kalman`` takes the
tracker's predicted boxes as they are; ``flow`` moves each track's box of the camera's previous frame by the median
sparse optical flow (``cv2.calcOpticalFlowPyrLK``) of points inside it, falling back to the Kalman box where too
few points are followed (the tracker still advances its filters, so IDs and association are the same);
``detections`` moves the camera's previous detections (every one, also those no track took yet) by optical flow
(a side cut by the frame's border stays on it: ``keep_cut_sides``) and gives them to the tracker as that frame's
detections (``DetectionCarrier``), so the tracker updates as on a detected frame. A track born on a detected frame
whose next frame is surely skipped (``next_skipped``) is shown at once (``TrackFrame.births_confirmed_next``) unless
it overlaps a lost track: the carried match that would confirm it only repeats its detection, and without this the
person entering on a skipped frame would be shown a frame later than with every frame detected (with
``kalman``/``flow`` ByteTrack shows a new track only from its second *detected* frame). Whole-video replay
(``bench/schedule_eval.py --frames 0``, carried detections every second frame, AVX-512 VNNI EPYC's ``auto``
detector): output-box recall per demo camera .856/.905/.882/.699 -> .864/.914/.892/.707 (every frame detected:
.879/.910/.895/.691), mean per-camera IDF1 0.640 -> 0.640, precision 0.887 -> 0.884.

Adaptive decisions use the tracks the pipeline last reported for the camera; steps are pipelined, so that report
is a few steps old (the decision lags by at most the pipeline's depth).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from spoton.domain import Detections, Tracks

SCHEDULES = ("fixed", "motion", "adaptive")
PREDICTIONS = ("kalman", "flow", "detections")
# Optical flow runs on frames scaled by this factor, on a grid of GRID x GRID points over the middle of each box
# (20-80 % of its width and height: the body, not the background at the edges); a box needs MIN_POINTS points
# followed forward and back to move.
FLOW_SCALE = 0.5
GRID = 5
MIN_POINTS = 4
FB_MAX = 0.5  # forward-backward error allowed, pixels of the scaled frame
EDGE_PX = 3.0  # a box side this close to the frame's border (full-frame pixels) is cut by it
LK_PARAMS = {
    "winSize": (15, 15),
    "maxLevel": 2,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
}
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
        prediction: how skipped frames get their boxes: ``kalman`` or ``flow``.
    """

    mode: str = "fixed"
    detect_every: int = 1
    motion_threshold: float = 0.002
    prediction: str = "kalman"

    def __post_init__(self) -> None:
        if self.mode not in SCHEDULES:
            raise ValueError(f"detection_schedule must be one of {SCHEDULES}, got {self.mode!r}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"schedule_prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if not 0 <= self.motion_threshold <= 1:
            raise ValueError(f"motion_threshold must be in [0, 1], got {self.motion_threshold}")

    @property
    def every_frame(self) -> bool:
        return self.detect_every == 1

    @property
    def uses_flow(self) -> bool:
        """Whether skipped frames need optical flow (the reader then makes each frame's ``flow_grey``)."""
        return self.prediction in ("flow", "detections") and not self.every_frame

    @property
    def carries_detections(self) -> bool:
        return self.prediction == "detections" and not self.every_frame


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

    def next_skipped(self, camera_id: str) -> bool:
        """Whether this camera's next frame is certain not to be detected (fixed mode, inside its period): then a
        detected frame's detections are carried into it (``births_confirmed_next``)."""
        st = self._cams.get(camera_id)
        p = self.policy
        return p.mode == "fixed" and st is not None and 0 < st.since_detect < p.detect_every

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


def flow_grey(image_bgr: np.ndarray) -> np.ndarray:
    """A frame for optical flow: uint8 grey scaled by ``FLOW_SCALE``."""
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    return cv2.resize(grey, None, fx=FLOW_SCALE, fy=FLOW_SCALE, interpolation=cv2.INTER_AREA)


def flow_shift(prev: np.ndarray, cur: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of ``prev`` moved into ``cur`` by the median optical flow of a grid of points inside each.

    Args:
        prev, cur: ``flow_grey`` frames.
        xyxy: float32 (N, 4) boxes in full-frame pixels.

    Returns:
        (N, 4) moved boxes and bool (N,) whether each box had ``MIN_POINTS`` followed points (else unmoved).
    """
    n = len(xyxy)
    if n == 0:
        return xyxy.copy(), np.zeros(0, bool)
    u = np.linspace(0.2, 0.8, GRID, dtype=np.float32)
    b = xyxy.astype(np.float32) * FLOW_SCALE
    xs = b[:, 0:1] + (b[:, 2:3] - b[:, 0:1]) * u  # (N, GRID)
    ys = b[:, 1:2] + (b[:, 3:4] - b[:, 1:2]) * u
    pts = np.stack(np.broadcast_arrays(xs[:, None, :], ys[:, :, None]), axis=-1).reshape(-1, 1, 2)
    pts = np.ascontiguousarray(pts, np.float32)
    nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **LK_PARAMS)
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **LK_PARAMS)
    # forward-backward check: a point counts only if following it back lands where it started
    fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    ok = ((status.ravel() == 1) & (status_back.ravel() == 1) & (fb < FB_MAX)).reshape(n, GRID * GRID)
    d = (nxt - pts).reshape(n, GRID * GRID, 2)
    moved, valid = xyxy.astype(np.float32).copy(), ok.sum(axis=1) >= MIN_POINTS
    for i in np.flatnonzero(valid):
        dx, dy = np.median(d[i][ok[i]], axis=0) / FLOW_SCALE
        moved[i] += (dx, dy, dx, dy)
    return moved, valid


def keep_cut_sides(before: np.ndarray, after: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """``after`` (float32 (N, 4), boxes moved by ``flow_shift``) with each side that ``before`` had on the frame's
    border kept there when the move would pull it inward: a box cut by the border shows part of a person, and as
    they walk in more of them comes into view (the box grows) rather than a gap opening at the edge. Whole-video
    replay (``bench/schedule_eval.py --frames 0``, carried detections every second frame): output-box recall per
    demo camera .855/.904/.881/.698 -> .857/.906/.884/.698."""
    w, h = wh
    out = after.copy()
    for k, border in ((0, 0.0), (1, 0.0)):
        cut = before[:, k] <= border + EDGE_PX
        out[cut, k] = np.minimum(out[cut, k], before[cut, k])
    for k, border in ((2, float(w)), (3, float(h))):
        cut = before[:, k] >= border - EDGE_PX
        out[cut, k] = np.maximum(out[cut, k], before[cut, k])
    return out


class FlowPredictor:
    """Per camera, the previous frame and its boxes by track ID; a skipped frame's tracks get their previous box
    moved by optical flow (``flow_shift``) instead of the tracker's Kalman box, where the track was there before."""

    def __init__(self) -> None:
        self._prev: dict[str, tuple[np.ndarray, dict[int, np.ndarray]]] = {}

    def step(self, camera_id: str, grey: np.ndarray, tracks: Tracks, detected: bool, wh: tuple[int, int]) -> Tracks:
        """This frame's tracks (moved by flow when the frame was not detected); remembers them for the next."""
        prev = self._prev.get(camera_id)
        if not detected and prev is not None and len(tracks):
            prev_grey, prev_boxes = prev
            ids = tracks.track_id.tolist()
            rows = [i for i, t in enumerate(ids) if t in prev_boxes]
            if rows:
                moved, valid = flow_shift(prev_grey, grey, np.array([prev_boxes[ids[i]] for i in rows], np.float32))
                xyxy = tracks.xyxy.copy()
                for j, i in enumerate(rows):
                    if valid[j]:
                        xyxy[i] = moved[j]
                w, h = wh
                xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
                xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
                tracks = dataclasses.replace(tracks, xyxy=xyxy)
        self._prev[camera_id] = (grey, dict(zip(tracks.track_id.tolist(), tracks.xyxy, strict=True)))
        return tracks


class DetectionCarrier:
    """Per camera, the previous frame and its detections (found, or carried themselves) with their embeddings; a
    skipped frame gets them moved by optical flow (``flow_shift``), to be tracked like a detected frame's.

    A box whose points are not followed stays where it was (a person standing still, or too small to follow); a
    box moved out of the frame is dropped. Confidences and embeddings are the originals', so the tracker's
    thresholds and appearance cues see what they saw on the detected frame.
    """

    def __init__(self) -> None:
        self._prev: dict[str, tuple[np.ndarray, Detections, np.ndarray]] = {}

    def step(
        self, camera_id: str, grey: np.ndarray, dets: Detections, emb: np.ndarray, detected: bool, wh: tuple[int, int]
    ) -> tuple[Detections, np.ndarray] | None:
        """This frame's detections and embeddings: ``dets``/``emb`` as given on a detected frame, carried ones on a
        skipped frame (None when the camera has no detected frame yet). ``emb``: float32 (N, D), or (0, 0)."""
        prev = self._prev.get(camera_id)
        if detected:
            self._prev[camera_id] = (grey, dets, emb)
            return dets, emb
        if prev is None:
            return None
        prev_grey, prev_dets, prev_emb = prev
        moved, _ = flow_shift(prev_grey, grey, prev_dets.xyxy)
        moved = keep_cut_sides(prev_dets.xyxy.astype(np.float32), moved, wh)
        w, h = wh
        moved[:, [0, 2]] = moved[:, [0, 2]].clip(0, w)
        moved[:, [1, 3]] = moved[:, [1, 3]].clip(0, h)
        keep = (moved[:, 2] - moved[:, 0] >= 2) & (moved[:, 3] - moved[:, 1] >= 2)
        out = Detections(moved[keep], prev_dets.confidence[keep], prev_dets.class_id[keep])
        out_emb = prev_emb[keep] if len(prev_emb) == len(prev_dets) and len(prev_emb) else prev_emb[:0]
        self._prev[camera_id] = (grey, out, out_emb)
        return out, out_emb
