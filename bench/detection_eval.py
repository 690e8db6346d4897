"""Detection recall/precision (IoU 0.5) and ms/frame on the demo cameras, per setting.

``python bench/detection_eval.py --every 10 --classes all,0 --sizes 640x480`` prints a table and writes
``bench/results/detection_eval.json``. Ground truth: the PETS boxes warped into each demo camera.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from detection_svc.detector import Detector
from spoton.demo.generate import DEFAULT_OUT
from spoton.evaluation import FrameBoxes, ground_truth_from_mot, score_camera
from spoton.videoset import load_video_set

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


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


def evaluate(
    weights: Path, size: tuple[int, int], classes: list[int] | None, conf: float, every: int, limit: int, demo_dir: Path
) -> dict:
    det = Detector(weights, size, "cpu", classes)
    det.warmup()
    vs = load_video_set(demo_dir / "demo.yaml")
    gt = ground_truth_from_mot({c.id: demo_dir / "gt" / f"{c.id}.txt" for c in vs.cameras})
    per_cam, total_ms, n = {}, 0.0, 0
    for cam in vs.cameras:
        hyp = {}
        frames = frames_of(vs.source_uri(cam), every, limit)
        for index, image in frames:
            (d,), ms = det.detect([image], conf, 0.5, 100)
            total_ms += ms
            n += 1
            hyp[index] = FrameBoxes(np.arange(len(d)), d.xyxy.astype(np.float64), np.full((len(d), 2), np.nan))
        s = score_camera(gt[cam.id], hyp, [i for i, _ in frames])
        per_cam[cam.id] = {
            "recall": s["recall"],
            "precision": s["precision"],
            "fp": s["num_false_positives"],
            "fn": s["num_misses"],
        }
    rec = np.mean([v["recall"] for v in per_cam.values()])
    prec = np.mean([v["precision"] for v in per_cam.values()])
    return {
        "weights": weights.name,
        "size": list(size),
        "classes": classes,
        "conf": conf,
        "frames": n,
        "ms_per_frame": total_ms / max(n, 1),
        "recall": float(rec),
        "precision": float(prec),
        "cameras": per_cam,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default="best.onnx")
    p.add_argument("--sizes", default="640x480")
    p.add_argument("--classes", default="all,0")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--limit", type=int, default=0, help="only the first N frames of each camera")
    p.add_argument("--demo-dir", type=Path, default=DEFAULT_OUT)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "detection_eval.json")
    a = p.parse_args()
    results = []
    for size in a.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        for cls in a.classes.split(","):
            classes = None if cls == "all" else [int(c) for c in cls.split("+")]
            t0 = time.time()
            r = evaluate(WEIGHTS / a.weights, (w, h), classes, a.conf, a.every, a.limit, a.demo_dir)
            results.append(r)
            print(
                f"{r['weights']} {size} classes={cls} conf={a.conf}: recall {r['recall']:.3f} precision "
                f"{r['precision']:.3f} {r['ms_per_frame']:.1f} ms/frame ({time.time() - t0:.0f} s)",
                flush=True,
            )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
