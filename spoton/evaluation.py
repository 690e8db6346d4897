"""The scoring kit every benchmark and accuracy test uses (motmetrics, IoU 0.5).

Inputs are MOTChallenge-style ground truth per camera and the system's output as DESIGN §3 step messages
(recorded as JSON lines, or the same dicts in process). Scores:
  * per camera: MOTA, IDF1, ID switches, recall, precision (local track ids);
  * multi-camera IDF1 of global ids against ground-truth person ids over all cameras' observations
    (every (camera, frame) is one frame of a single accumulator, as the AI City Challenge 2023 scored it);
  * floor error of matched people (median, p90, metres);
  * detection recall/precision (boxes only).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# motmetrics 1.4.0 calls np.asfarray, removed in NumPy 2: the one shim, before motmetrics is imported.
if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]

import motmetrics as mm

IOU_THRESHOLD = 0.5


@dataclass
class FrameBoxes:
    """One camera frame's boxes: ids (N,), xyxy (N, 4) px, floor (N, 2) m with NaN where unknown."""

    ids: np.ndarray
    xyxy: np.ndarray
    floor: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


# camera_id -> frame_index -> FrameBoxes
CameraFrames = dict[str, dict[int, FrameBoxes]]


def ground_truth_from_mot(files: dict[str, Path], max_frame: int = 0, counted_only: bool = True) -> CameraFrames:
    """Per-camera MOT files -> CameraFrames (ids are person ids, shared across cameras)."""
    from spoton.demo.data import load_mot

    out: CameraFrames = {}
    for cam, path in files.items():
        rows = load_mot(path)
        if counted_only:
            rows = rows[rows[:, 6] == 1]
        if max_frame:
            rows = rows[rows[:, 0] <= max_frame]
        frames: dict[int, FrameBoxes] = {}
        for f in np.unique(rows[:, 0]).astype(int):
            r = rows[rows[:, 0] == f]
            xyxy = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1)
            frames[int(f)] = FrameBoxes(r[:, 1].astype(np.int64), xyxy, r[:, 7:9].copy())
        out[cam] = frames
    return out


def hypotheses_from_steps(messages: Iterable[dict], id_field: str = "track_id") -> CameraFrames:
    """Step messages (DESIGN §3) -> CameraFrames keyed by source frame index, ids from ``id_field``."""
    acc: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for msg in messages:
        if msg.get("type") != "step":
            continue
        for cam, body in msg["cameras"].items():
            frame = int(body["frame_index"])
            acc[cam].setdefault(frame, [])
            for t in body["tracks"]:
                ident = t.get(id_field)
                if ident is None:
                    continue
                floor = t.get("floor") or [np.nan, np.nan]
                acc[cam][frame].append((int(ident), *t["bbox"], *floor))
    out: CameraFrames = {}
    for cam, frames in acc.items():
        out[cam] = {}
        for f, rows in frames.items():
            a = np.array(rows, np.float64).reshape(-1, 7)
            out[cam][f] = FrameBoxes(a[:, 0].astype(np.int64), a[:, 1:5], a[:, 5:7])
    return out


def read_steps(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def _accumulate(pairs: Iterable[tuple[FrameBoxes | None, FrameBoxes | None]]) -> tuple[mm.MOTAccumulator, list]:
    acc = mm.MOTAccumulator(auto_id=True)
    floors = []
    for gt, hyp in pairs:
        g = gt or FrameBoxes(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 2)))
        h = hyp or FrameBoxes(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 2)))
        dist = mm.distances.iou_matrix(_xywh(g.xyxy), _xywh(h.xyxy), max_iou=1 - IOU_THRESHOLD)
        frame_id = acc.update(g.ids.tolist(), h.ids.tolist(), dist)
        floors.append((frame_id, g, h))
    return acc, floors


def _floor_errors(acc: mm.MOTAccumulator, floors: list) -> np.ndarray:
    ev = acc.mot_events
    matches = ev[ev["Type"].isin(["MATCH", "SWITCH"])]
    by_frame = {fid: (g, h) for fid, g, h in floors}
    errs = []
    for (fid, _), row in matches.iterrows():
        g, h = by_frame[fid]
        gi = np.flatnonzero(g.ids == row["OId"])
        hi = np.flatnonzero(h.ids == row["HId"])
        if len(gi) and len(hi) and len(g.floor) and len(h.floor):
            gp, hp = g.floor[gi[0]], h.floor[hi[0]]
            if np.isfinite(gp).all() and np.isfinite(hp).all():
                errs.append(float(np.linalg.norm(gp - hp)))
    return np.array(errs)


METRICS = [
    "mota",
    "idf1",
    "num_switches",
    "recall",
    "precision",
    "num_frames",
    "num_unique_objects",
    "num_false_positives",
    "num_misses",
    "num_fragmentations",
]


def _summary(acc: mm.MOTAccumulator) -> dict:
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=METRICS, name="x")
    return {k: float(s[k].iloc[0]) for k in METRICS}


def score_camera(gt: dict[int, FrameBoxes], hyp: dict[int, FrameBoxes], frames: Iterable[int] | None = None) -> dict:
    """MOTA, IDF1, ID switches, recall, precision and floor error for one camera (over ``frames``)."""
    frames = sorted(frames if frames is not None else set(gt) | set(hyp))
    acc, floors = _accumulate((gt.get(f), hyp.get(f)) for f in frames)
    result = _summary(acc)
    errs = _floor_errors(acc, floors)
    result |= _floor_stats(errs)
    return result


def _floor_stats(errs: np.ndarray) -> dict:
    if not len(errs):
        return {"floor_median_m": None, "floor_p90_m": None, "floor_matches": 0}
    return {
        "floor_median_m": float(np.median(errs)),
        "floor_p90_m": float(np.percentile(errs, 90)),
        "floor_matches": len(errs),
    }


def score_multicamera(gt: CameraFrames, hyp: CameraFrames, frames: dict[str, Iterable[int]] | None = None) -> dict:
    """Multi-camera IDF1 etc. with hypothesis ids = global ids, every (camera, frame) one frame."""
    pairs = []
    for cam in sorted(gt):
        cam_frames = sorted(frames[cam]) if frames and cam in frames else sorted(set(gt[cam]) | set(hyp.get(cam, {})))
        pairs.extend((gt[cam].get(f), hyp.get(cam, {}).get(f)) for f in cam_frames)
    acc, floors = _accumulate(pairs)
    result = _summary(acc)
    result |= _floor_stats(_floor_errors(acc, floors))
    result["global_ids"] = len({int(i) for c in hyp.values() for fb in c.values() for i in fb.ids})
    result["gt_people"] = len({int(i) for c in gt.values() for fb in c.values() for i in fb.ids})
    return result


def matched_sightings(gt: CameraFrames, hyp: CameraFrames) -> list[tuple[str, int, int, int]]:
    """(camera, frame, truth id, system id) for every hypothesis matched to ground truth by IoU >= 0.5
    (Hungarian per camera frame)."""
    from scipy.optimize import linear_sum_assignment

    out = []
    for cam in gt:
        for f, g in gt[cam].items():
            h = hyp.get(cam, {}).get(f)
            if h is None or not len(h.ids) or not len(g.ids):
                continue
            d = mm.distances.iou_matrix(_xywh(g.xyxy), _xywh(h.xyxy), max_iou=1 - IOU_THRESHOLD)
            cost = np.where(np.isnan(d), 1e6, d)
            for r, c in zip(*linear_sum_assignment(cost), strict=True):
                if cost[r, c] < 1e6:
                    out.append((cam, f, int(g.ids[r]), int(h.ids[c])))
    return out


def same_person_decisions(gt: CameraFrames, hyp: CameraFrames) -> dict:
    """Precision/recall of 'same person' for simultaneous sightings in different cameras.

    For every pair of matched sightings (``matched_sightings``) in two cameras at the same frame index, truth says
    same/different person, the system says same/different global id.
    """
    by_frame: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
    for cam, f, g, h in matched_sightings(gt, hyp):
        by_frame[f].append((cam, g, h))
    tp = fp = fn = 0
    for sightings in by_frame.values():
        for i in range(len(sightings)):
            for j in range(i + 1, len(sightings)):
                (ca, ga, ha), (cb, gb, hb) = sightings[i], sightings[j]
                if ca == cb:
                    continue
                same_truth, same_sys = ga == gb, ha == hb
                tp += same_truth and same_sys
                fp += (not same_truth) and same_sys
                fn += same_truth and not same_sys
    return {
        "same_person_precision": tp / (tp + fp) if tp + fp else None,
        "same_person_recall": tp / (tp + fn) if tp + fn else None,
        "same_person_pairs": tp + fn,
    }


def handovers(gt: CameraFrames, hyp: CameraFrames, window_frames: int = 70, settle_frames: int = 7) -> dict:
    """Share of camera-to-camera handovers that keep the person's global id.

    A handover is a person's entry into camera B (first ground-truth frame after at least ``window_frames``
    absent from B) while that person was seen by another camera A at most ``window_frames`` before (or at the
    same instant: overlapping views). It keeps the id when the system's id for the person in B (first matched
    sighting within ``settle_frames`` of the entry) equals the id it last had in A. Entries the detector missed
    on either side are counted apart (``handovers_unobserved``), not as failures.
    """
    seen = matched_sightings(gt, hyp)
    sys_ids: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for cam, f, g, h in seen:
        sys_ids[(g, cam)][f] = h
    present: dict[tuple[int, str], list[int]] = defaultdict(list)
    for cam, frames in gt.items():
        for f, fb in frames.items():
            for g in fb.ids:
                present[(int(g), cam)].append(f)
    kept = total = unobserved = 0
    people = {g for g, _ in present}
    for g in people:
        cams = [c for (gg, c) in present if gg == g]
        for b in cams:
            frames_b = sorted(present[(g, b)])
            entries = [f for i, f in enumerate(frames_b) if i == 0 or f - frames_b[i - 1] > window_frames]
            for f0 in entries:
                # The person's most recent system id in any other camera, within the window before the entry.
                last_a = None
                for a in cams:
                    if a == b:
                        continue
                    prior = [f for f in present[(g, a)] if f0 - window_frames <= f <= f0]
                    if not prior:
                        continue
                    ids_a = sys_ids.get((g, a), {})
                    matched = [f for f in prior if f in ids_a]
                    if matched and (last_a is None or max(matched) > last_a[0]):
                        last_a = (max(matched), ids_a[max(matched)])
                    elif not matched and last_a is None:
                        last_a = (-1, None)
                if last_a is None:
                    continue
                ids_b = sys_ids.get((g, b), {})
                first_b = next((ids_b[f] for f in range(f0, f0 + settle_frames + 1) if f in ids_b), None)
                if last_a[1] is None or first_b is None:
                    unobserved += 1
                    continue
                total += 1
                kept += first_b == last_a[1]
    return {
        "handover_kept": kept / total if total else None,
        "handovers": total,
        "handovers_unobserved": unobserved,
    }


def score_run(gt: CameraFrames, messages: list[dict]) -> dict:
    """Everything the kit reports for one recorded run, restricted to the frames the run covered."""
    local = hypotheses_from_steps(messages, "track_id")
    global_ = hypotheses_from_steps(messages, "global_id")
    covered: dict[str, set[int]] = defaultdict(set)
    for msg in messages:
        if msg.get("type") == "step":
            for cam, body in msg["cameras"].items():
                covered[cam].add(int(body["frame_index"]))
    cams = {c: score_camera(gt[c], local.get(c, {}), covered[c]) for c in gt if c in covered}
    gt_cov = {c: {f: fb for f, fb in gt[c].items() if f in covered[c]} for c in cams}
    multi = score_multicamera(gt_cov, global_, {c: covered[c] for c in cams})
    multi |= same_person_decisions(gt_cov, global_)
    multi |= handovers(gt_cov, global_)
    return {"cameras": cams, "multi_camera": multi}
