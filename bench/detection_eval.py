"""Detection recall/precision (IoU 0.5) and ms/frame per setting: ``python bench/detection_eval.py``.

Settings are ``backend:WxH:classes[:tileWxH]`` (backend ``onnx`` = weights/best.onnx on ONNX Runtime, ``int8`` = its
INT8 quantization weights/best_int8.onnx, ``torch`` = weights/best.pt on PyTorch; classes ``0`` or ``all``) plus
``hog`` (OpenCV's people detector, the floor).
Datasets: ``pets`` (vtest.avi against the PETS09-S2L1 ground truth) and ``demo`` (the four demo cameras).
Writes ``bench/results/detection_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from detection_svc.detector import Detector
from spoton.demo.data import gt_path, vtest_path
from spoton.demo.generate import DEFAULT_OUT
from spoton.domain import Detections
from spoton.evaluation import FrameBoxes, ground_truth_from_mot, score_camera
from spoton.videoset import load_video_set

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_SETTINGS = (
    "onnx:640x480:0,onnx:640x480:all,torch:640x480:0,onnx:960x736:0,onnx:512x384:0,onnx:416x320:0,"
    "onnx:640x480:0:tile384x288,hog"
)


def frames_of(path: str, every: int, limit: int) -> list[tuple[int, np.ndarray]]:
    cap = cv2.VideoCapture(path)
    out, index = [], 0
    while True:
        ok, image = cap.read()
        if not ok or (limit and index >= limit):
            break
        index += 1
        if (index - 1) % every == 0:
            out.append((index, image))
    cap.release()
    return out


class HogDetector:
    """OpenCV's HOG + linear SVM people detector: the floor any learned detector must beat."""

    def __init__(self) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, images, conf, iou, max_det):  # type: ignore[no-untyped-def]
        start, out = time.perf_counter(), []
        for image in images:
            rects, weights = self.hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
            xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in rects], np.float32).reshape(-1, 4)
            out.append(Detections(xyxy, np.clip(np.ravel(weights), 0, 1), np.zeros(len(xyxy))))
        return out, (time.perf_counter() - start) * 1000


def build(setting: str):  # type: ignore[no-untyped-def]
    if setting == "hog":
        return HogDetector()
    parts = setting.split(":")
    backend, size, classes = parts[:3]
    w, h = (int(v) for v in size.split("x"))
    tile = None
    if len(parts) > 3 and parts[3].startswith("tile"):
        tw, th = (int(v) for v in parts[3][4:].split("x"))
        tile = (tw, th)
    weights = WEIGHTS / {"onnx": "best.onnx", "int8": "best_int8.onnx", "torch": "best.pt"}[backend]
    det = Detector(
        weights, (w, h), "cpu", None if classes == "all" else [int(c) for c in classes.split("+")], tile_wh=tile
    )
    det.warmup()
    return det


def datasets(name: str, every: int, limit: int) -> list[tuple[str, dict, list[tuple[int, np.ndarray]]]]:
    if name == "pets":
        gt = ground_truth_from_mot({"pets": gt_path()})["pets"]
        return [("pets", gt, frames_of(str(vtest_path()), every, limit))]
    vs = load_video_set(DEFAULT_OUT / "demo.yaml")
    gts = ground_truth_from_mot({c.id: DEFAULT_OUT / "gt" / f"{c.id}.txt" for c in vs.cameras})
    return [(c.id, gts[c.id], frames_of(vs.source_uri(c), every, limit)) for c in vs.cameras]


def evaluate(det, data, conf: float) -> dict:  # type: ignore[no-untyped-def]
    tp = fp = fn = 0
    times = []
    for _, gt, frames in data:
        hyp = {}
        for index, image in frames:
            (d,), ms = det.detect([image], conf, 0.5, 100)
            times.append(ms)
            hyp[index] = FrameBoxes(np.arange(len(d)), d.xyxy.astype(np.float64))
        s = score_camera(gt, hyp, [i for i, _ in frames])
        n_gt = sum(len(gt[i].ids) for i, _ in frames if i in gt)
        tp_c = n_gt - int(s["num_misses"])
        tp, fp, fn = tp + tp_c, fp + int(s["num_false_positives"]), fn + int(s["num_misses"])
    return {
        "recall": tp / max(tp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "frames": len(times),
        "ms_median": float(np.median(times)),
        "ms_p95": float(np.percentile(times, 95)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", default=DEFAULT_SETTINGS)
    p.add_argument("--dataset", default="pets", choices=["pets", "demo"])
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--limit", type=int, default=0, help="only the first N frames")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "detection_eval.json")
    a = p.parse_args()
    data = datasets(a.dataset, a.every, a.limit)
    results = []
    for setting in a.settings.split(","):
        t0 = time.time()
        r = {"setting": setting, "dataset": a.dataset, "conf": a.conf, **evaluate(build(setting), data, a.conf)}
        results.append(r)
        print(
            f"{a.dataset} {setting:28s} recall {r['recall']:.3f} precision {r['precision']:.3f} "
            f"{r['ms_median']:6.1f} ms/frame (p95 {r['ms_p95']:.1f}; {time.time() - t0:.0f} s)",
            flush=True,
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
