"""Detector speed: median/p95 ms per frame for backend x input size x batch, frames/s and peak RSS.

``python bench/detection_speed.py`` (frames from vtest.avi). Writes ``bench/results/detection_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import cv2
import numpy as np

from detection_svc.config import DEFAULT_WEIGHTS, SHORT_NAMES
from detection_svc.detector import Detector
from spoton.demo.data import vtest_path

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
SIZES = {640: (640, 480), 512: (512, 384), 416: (416, 320), 320: (320, 256)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--backends", default="onnx,int8,ov,ov-int8,torch", help=", ".join(SHORT_NAMES))
    p.add_argument("--sizes", default="640,512,416,320")
    p.add_argument("--batches", default="1,4")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "detection_speed.json")
    a = p.parse_args()
    cap = cv2.VideoCapture(str(vtest_path()))
    images = [cap.read()[1] for _ in range(a.frames)]
    results = []
    for backend in a.backends.split(","):
        runtime, precision = SHORT_NAMES[backend]
        name = DEFAULT_WEIGHTS[runtime, precision]
        for size in (int(s) for s in a.sizes.split(",")):
            for batch in (int(b) for b in a.batches.split(",")):
                det = Detector(WEIGHTS / name, SIZES[size], "cpu", [0], batch=batch, backend=runtime)
                det.detect(images[:batch], 0.25, 0.5, 100)
                per_frame = []
                for i in range(0, len(images) - batch + 1, batch):
                    t0 = time.perf_counter()
                    det.detect(images[i : i + batch], 0.25, 0.5, 100)
                    per_frame.append((time.perf_counter() - t0) * 1000 / batch)
                r = {
                    "backend": backend,
                    "input": list(SIZES[size]),
                    "batch": batch,
                    "ms_median": float(np.median(per_frame)),
                    "ms_p95": float(np.percentile(per_frame, 95)),
                    "frames_per_s": 1000 / float(np.median(per_frame)),
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
                results.append(r)
                print(
                    f"{backend:7s} {size:4d} batch {batch}: {r['ms_median']:6.1f} ms/frame (p95 {r['ms_p95']:.1f}) "
                    f"{r['frames_per_s']:5.1f} frames/s  peak RSS {r['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
