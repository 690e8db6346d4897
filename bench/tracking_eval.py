"""Every tracker through the real tracking service, scored with the kit: ``python bench/tracking_eval.py``.

Datasets (MOTA, IDF1, ID switches, fragmentations; motmetrics, IoU 0.5):
  * ``pets-frcnn``: PETS09-S2L1 with the Faster R-CNN public detections (the tracker alone);
  * ``pets-yolo``: PETS09-S2L1 with our detector's output (default weights, 640x480, class 0, conf 0.1);
  * ``tud-campus`` / ``tud-stadtmitte``: motmetrics' bundled ground truth turned into detector-like input
    (seeded jitter, 10 % misses, false positives, confidence noise); motion-only trackers (no images).
Appearance trackers get MobileNetV2 embeddings of the boxes, computed once, as reid_svc would.
``--peer`` also runs Ultralytics' own ``track`` mode (ByteTrack, BoT-SORT) on vtest.avi with the same weights.
Writes ``bench/results/tracking_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib import resources
from pathlib import Path

import cv2
import grpc
import numpy as np

from spoton.demo.data import gt_path, load_mot, public_detections_path, vtest_path
from spoton.domain import Detections, array_to_tensor
from spoton.evaluation import FrameBoxes, ground_truth_from_mot, score_camera
from spoton.launcher import REPO, start_stack
from spoton.v1 import tracking_pb2, tracking_pb2_grpc

CACHE = REPO / "build" / "cache"
WEIGHTS = REPO / "weights"
Frames = list[tuple[int, Detections, np.ndarray | None, int, int]]


def pets_frames(dets: np.ndarray, embeddings: dict[int, np.ndarray] | None, n_frames: int) -> Frames:
    out = []
    for f in range(1, n_frames + 1):
        r = dets[dets[:, 0] == f]
        xyxy = (
            np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1) if len(r) else np.zeros((0, 4))
        )
        d = Detections(xyxy, np.clip(r[:, 6], 0, 1), np.zeros(len(r)))
        out.append((f, d, embeddings.get(f) if embeddings else None, 768, 576))
    return out


def yolo_detections(n_frames: int) -> np.ndarray:
    """Our detector on vtest.avi (cached in build/cache): MOT rows frame,-1,l,t,w,h,conf."""
    path = CACHE / "pets_yolo_640x480_c0.txt"
    if path.exists():
        return load_mot(path)
    from detection_svc.detector import Detector

    det = Detector(WEIGHTS / "best.onnx", (640, 480), "cpu", [0])
    cap = cv2.VideoCapture(str(vtest_path()))
    rows = []
    for f in range(1, n_frames + 1):
        ok, image = cap.read()
        if not ok:
            break
        (d,), _ = det.detect([image], 0.1, 0.5, 100)
        for (x1, y1, x2, y2), c in zip(d.xyxy, d.confidence, strict=True):
            rows.append((f, -1, x1, y1, x2 - x1, y2 - y1, c, -1, -1, -1))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.array(rows), delimiter=",", fmt="%.3f")
    return np.array(rows)


def embed_all(dets: np.ndarray, name: str) -> dict[int, np.ndarray]:
    """MobileNetV2 embeddings of every box (cached), as reid_svc computes them."""
    path = CACHE / f"{name}_emb.npz"
    if path.exists():
        data = np.load(path)
        return {int(k): data[k] for k in data.files}
    from reid_svc.embedders import Embedder

    emb = Embedder()
    cap = cv2.VideoCapture(str(vtest_path()))
    out, f = {}, 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        f += 1
        r = dets[dets[:, 0] == f]
        xyxy = (
            np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1) if len(r) else np.zeros((0, 4))
        )
        out[f] = emb.embed_boxes(image, xyxy)[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{str(k): v for k, v in out.items()})
    return out


def synthetic_detections(gt: np.ndarray, seed: int) -> np.ndarray:
    """Ground truth -> detector-like rows: jitter, ~10 % misses, ~1 false positive per 3 frames, noisy confidence."""
    rng = np.random.default_rng(seed)
    keep = gt[rng.random(len(gt)) > 0.10].copy()
    keep[:, 2:4] += rng.normal(0, 0.04, (len(keep), 2)) * keep[:, 4:6]
    keep[:, 4:6] *= 1 + rng.normal(0, 0.05, (len(keep), 2))
    keep[:, 6] = np.clip(rng.normal(0.7, 0.15, len(keep)), 0.05, 1.0)
    frames = np.unique(gt[:, 0])
    fps = []
    w_max, h_max = gt[:, 2].max() + gt[:, 4].max(), gt[:, 3].max() + gt[:, 5].max()
    for f in frames[rng.random(len(frames)) < 0.33]:
        w, h = rng.uniform(30, 80), rng.uniform(80, 200)
        fps.append(
            (f, -1, rng.uniform(0, w_max - w), rng.uniform(0, h_max - h), w, h, rng.uniform(0.1, 0.6), -1, -1, -1)
        )
    rows = np.concatenate([keep, np.array(fps).reshape(-1, 10)]) if fps else keep
    return rows[np.argsort(rows[:, 0], kind="stable")]


def run_tracker(stub, tracker: str, frames: Frames, fps: float, options: dict) -> tuple[dict[int, FrameBoxes], float]:  # type: ignore[no-untyped-def]
    from google.protobuf import struct_pb2

    opts = struct_pb2.Struct()
    opts.update(options)

    def requests():  # type: ignore[no-untyped-def]
        yield tracking_pb2.TrackRequest(
            start=tracking_pb2.TrackStart(
                session_id=f"eval-{time.time_ns()}", camera_id="c", tracker_type=tracker, options=opts, fps=fps
            )
        )
        for f, d, e, w, h in frames:
            msg = tracking_pb2.TrackFrame(frame_index=f, width=w, height=h, detections=d.to_proto())
            if e is not None:
                msg.embeddings.CopyFrom(array_to_tensor(e))
            yield tracking_pb2.TrackRequest(frame=msg)

    hyp: dict[int, FrameBoxes] = {}
    t0 = time.perf_counter()
    for reply in stub.Track(requests(), timeout=600):
        tracks = [t for t in reply.tracks if t.det_index >= 0]
        hyp[reply.frame_index] = FrameBoxes(
            np.array([t.track_id for t in tracks], np.int64),
            np.array([[t.bbox.x1, t.bbox.y1, t.bbox.x2, t.bbox.y2] for t in tracks], np.float64).reshape(-1, 4),
        )
    return hyp, (time.perf_counter() - t0) / max(len(frames), 1) * 1000


def peer(tracker_yaml: str, n_frames: int, gt, weights: str = "best.onnx") -> dict:  # type: ignore[no-untyped-def]
    """Ultralytics' own track mode on vtest.avi, same weights (ONNX, input 640), class 0, conf 0.1."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(str(WEIGHTS / weights), task="detect")
    hyp: dict[int, FrameBoxes] = {}
    t0 = time.perf_counter()
    results = model.track(
        source=str(vtest_path()),
        stream=True,
        tracker=tracker_yaml,
        imgsz=640,
        classes=[0],
        conf=0.1,
        persist=True,
        verbose=False,
    )
    for f, r in enumerate(results, start=1):
        if f > n_frames:
            break
        b = r.boxes
        ids = b.id.numpy().astype(np.int64) if b.id is not None else np.zeros(0, np.int64)
        xyxy = b.xyxy.numpy()[: len(ids)] if b.id is not None else np.zeros((0, 4))
        hyp[f] = FrameBoxes(ids, xyxy.astype(np.float64))
    fps = len(hyp) / (time.perf_counter() - t0)
    s = score_camera(gt, hyp, range(1, n_frames + 1))
    return {
        "dataset": "pets-yolo",
        "tracker": f"ultralytics-{tracker_yaml.split('.')[0]}",
        "weights": weights,
        "frames_per_s": fps,
        **{k: s[k] for k in ("mota", "idf1", "num_switches", "num_fragmentations", "recall", "precision")},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trackers", default="")
    p.add_argument("--datasets", default="pets-frcnn,pets-yolo,tud-campus,tud-stadtmitte")
    p.add_argument("--frames", type=int, default=795)
    p.add_argument("--peer", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "tracking_eval.json")
    a = p.parse_args()
    from tracking_svc.trackers import available_trackers, uses_embeddings

    trackers = a.trackers.split(",") if a.trackers else available_trackers()
    stack = start_stack(REPO / ".spoton" / "bench-logs", "", REPO, only=("tracking",))
    stub = tracking_pb2_grpc.TrackingServiceStub(grpc.insecure_channel(stack.addr("tracking")))
    results = []
    try:
        for dataset in a.datasets.split(","):
            if dataset.startswith("pets"):
                if gt_path() is None:
                    print("skip PETS: ground truth not found")
                    continue
                gt = ground_truth_from_mot({"c": gt_path()}, a.frames)["c"]
                dets = load_mot(public_detections_path()) if dataset == "pets-frcnn" else yolo_detections(a.frames)
                dets = dets[dets[:, 0] <= a.frames]
                frames = pets_frames(dets, embed_all(dets, dataset), a.frames)
                frames_plain = pets_frames(dets, None, a.frames)
                fps, n = 7.0, a.frames
            else:
                name = "TUD-Campus" if dataset == "tud-campus" else "TUD-Stadtmitte"
                gt_file = Path(str(resources.files("motmetrics") / "data" / name / "gt.txt"))
                gt_rows = load_mot(gt_file)
                gt = ground_truth_from_mot({"c": gt_file}, counted_only=False)["c"]
                n = int(gt_rows[:, 0].max())
                dets = synthetic_detections(gt_rows, seed=2024)
                frames = frames_plain = pets_frames(dets, None, n)
                fps = 25.0
            for tracker in trackers:
                needs = uses_embeddings(tracker)
                options: dict = {}
                if dataset.startswith("tud") and needs:
                    from tracking_svc.trackers import default_options

                    if "use_embeddings" not in default_options(tracker):
                        continue
                    options = {"use_embeddings": False}
                try:
                    hyp, ms = run_tracker(stub, tracker, frames if needs else frames_plain, fps, options)
                except grpc.RpcError as exc:
                    print(f"{dataset} {tracker}: {exc.code().name} {exc.details()}")
                    continue
                s = score_camera(gt, hyp, range(1, n + 1))
                row = {
                    "dataset": dataset,
                    "tracker": tracker,
                    "ms_per_frame": ms,
                    "appearance": bool(needs) and not options,
                    **{k: s[k] for k in ("mota", "idf1", "num_switches", "num_fragmentations", "recall", "precision")},
                }
                results.append(row)
                print(
                    f"{dataset:15s} {tracker:11s} MOTA {row['mota']:.3f} IDF1 {row['idf1']:.3f} "
                    f"IDsw {int(row['num_switches']):3d} frag {int(row['num_fragmentations']):3d} "
                    f"{ms:.1f} ms/frame",
                    flush=True,
                )
        if a.peer and gt_path() is not None:
            gt = ground_truth_from_mot({"c": gt_path()}, a.frames)["c"]
            for yaml_name in ("bytetrack.yaml", "botsort.yaml"):
                row = peer(yaml_name, a.frames, gt)
                results.append(row)
                print(
                    f"pets-yolo       {row['tracker']:11s} MOTA {row['mota']:.3f} IDF1 {row['idf1']:.3f} "
                    f"IDsw {int(row['num_switches']):3d} {row['frames_per_s']:.2f} frames/s",
                    flush=True,
                )
    finally:
        stack.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
