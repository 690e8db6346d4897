"""Tracker cost: ms per frame for every tracker at 5, 20 and 50 detections per frame.

``python bench/tracking_speed.py``.

Synthetic people walking in straight lines (in process, the tracking service's own ``CameraTracker``), 1280-d
embeddings for appearance trackers as reid_svc sends them. Writes ``bench/results/tracking_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from spoton.domain import Detections
from tracking_svc.trackers import CameraTracker, available_trackers


def scene(n: int, frames: int, seed: int = 0) -> list[tuple[Detections, np.ndarray]]:
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [1800, 900], (n, 2))
    vel = rng.normal(0, 4, (n, 2))
    size = rng.uniform([30, 80], [60, 160], (n, 2))
    emb = rng.normal(size=(n, 1280)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = []
    for f in range(frames):
        xy = start + vel * f
        xyxy = np.concatenate([xy, xy + size], axis=1)
        out.append((Detections(xyxy, rng.uniform(0.3, 0.95, n), np.zeros(n)), emb))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "tracking_speed.json")
    a = p.parse_args()
    results = []
    for n in (5, 20, 50):
        frames = scene(n, a.frames)
        for name in available_trackers():
            t = CameraTracker.create(name, {}, 7)
            for f, (d, e) in enumerate(frames[:10], start=1):
                t.update(d, e, (1920, 1080), f)
            start = time.perf_counter()
            for f, (d, e) in enumerate(frames[10:], start=11):
                t.update(d, e, (1920, 1080), f)
            ms = (time.perf_counter() - start) / (len(frames) - 10) * 1000
            results.append({"tracker": name, "detections": n, "ms_per_frame": ms})
            print(f"{name:11s} {n:3d} detections: {ms:6.2f} ms/frame", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
