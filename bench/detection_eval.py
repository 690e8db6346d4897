"""Detection recall/precision (IoU 0.5) and ms/frame per setting: ``python bench/detection_eval.py``.

Settings are ``backend:WxH:classes[:option...]``: backend ``onnx`` = weights/best.onnx on ONNX Runtime, ``int8`` =
its INT8 quantization weights/best_int8.onnx, ``ov`` = the OpenVINO IR weights/best_openvino_model (FP32),
``ov-int8`` = its NNCF INT8 quantization weights/best_int8_openvino_model (8-bit weights, for VNNI/AMX CPUs),
``ov-int8w7`` = the one with 7-bit weights for CPUs without VNNI (weights/best_int8w7_openvino_model),
``torch`` = weights/best.pt on PyTorch; classes ``0`` or ``all``; options ``tileWxH`` (SAHI tiles), ``bN`` (N
frames per forward pass, default 1), ``tN`` (runtime threads, default the runtime's), ``spin`` (ONNX Runtime
busy-waits), ``tput`` (OpenVINO throughput hint), ``f32``/``bf16`` (OpenVINO inference precision; default bf16 on
AMX/AVX-512 BF16 CPUs), ``pin`` (OpenVINO threads pinned to cores); plus ``hog`` (OpenCV's people detector, the
floor).
All settings run interleaved, frame group by frame group (in turn-rotating order), so a busy machine slows them
alike; CPU ms (all threads of this process) is the cost that matters where services share the cores.
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

from detection_svc.config import DEFAULT_WEIGHTS, SHORT_NAMES
from detection_svc.detector import Detector
from detection_svc.runtimes import RuntimeOptions
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
    """The detector of one setting and its frames per call."""
    if setting == "hog":
        return HogDetector(), 1
    parts = setting.split(":")
    backend, size, classes = parts[:3]
    w, h = (int(v) for v in size.split("x"))
    tile, batch, threads, spin, hint, precision, pin = None, 1, 0, False, "LATENCY", "", False
    for option in parts[3:]:
        if option.startswith("tile"):
            tw, th = (int(v) for v in option[4:].split("x"))
            tile = (tw, th)
        elif option.startswith("b"):
            batch = int(option[1:])
        elif option.startswith("t") and option[1:].isdigit():
            threads = int(option[1:])
        elif option == "spin":
            spin = True
        elif option == "tput":
            hint = "THROUGHPUT"
        elif option in ("f32", "bf16"):
            precision = option
        elif option == "pin":
            pin = True
        else:
            raise ValueError(f"unknown option {option!r} in {setting!r}")
    runtime, model_precision = SHORT_NAMES[backend]
    name = DEFAULT_WEIGHTS[runtime, model_precision]
    det = Detector(
        WEIGHTS / name,
        (w, h),
        "cpu",
        None if classes == "all" else [int(c) for c in classes.split("+")],
        batch=batch,
        tile_wh=tile,
        backend=runtime,
        runtime=RuntimeOptions(threads=threads, spinning=spin, ov_hint=hint, ov_precision=precision, ov_pinning=pin),
    )
    det.warmup()
    return det, batch


def datasets(name: str, every: int, limit: int) -> list[tuple[str, dict, list[tuple[int, np.ndarray]]]]:
    if name == "pets":
        gt = ground_truth_from_mot({"pets": gt_path()})["pets"]
        return [("pets", gt, frames_of(str(vtest_path()), every, limit))]
    vs = load_video_set(DEFAULT_OUT / "demo.yaml")
    gts = ground_truth_from_mot({c.id: DEFAULT_OUT / "gt" / f"{c.id}.txt" for c in vs.cameras})
    return [(c.id, gts[c.id], frames_of(vs.source_uri(c), every, limit)) for c in vs.cameras]


def evaluate(detectors: dict, data, conf: float) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Every setting over the same frames, interleaved: for each group of frames (the largest batch), each setting in
    turn (the order rotating per group) detects the group, ``batch`` frames per call."""
    group = max(batch for _, batch in detectors.values())
    names = list(detectors)
    counts = {name: [0, 0, 0] for name in names}  # tp, fp, fn
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}  # CPU time of every thread of this process
    turn = 0
    for _, gt, frames in data:
        hyp: dict[str, dict] = {name: {} for name in names}
        for start in range(0, len(frames), group):
            chunk = frames[start : start + group]
            turn += 1
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                det, batch = detectors[name]
                for i in range(0, len(chunk), batch):
                    part = chunk[i : i + batch]
                    cpu = time.process_time()
                    found, ms = det.detect([image for _, image in part], conf, 0.5, 100)
                    cpu_ms = (time.process_time() - cpu) * 1000.0
                    times[name].extend([ms / len(part)] * len(part))
                    cpu_times[name].extend([cpu_ms / len(part)] * len(part))
                    for (index, _), d in zip(part, found, strict=True):
                        hyp[name][index] = FrameBoxes(np.arange(len(d)), d.xyxy.astype(np.float64))
        indices = [i for i, _ in frames]
        n_gt = sum(len(gt[i].ids) for i in indices if i in gt)
        for name in names:
            s = score_camera(gt, hyp[name], indices)
            c = counts[name]
            c[0] += n_gt - int(s["num_misses"])
            c[1] += int(s["num_false_positives"])
            c[2] += int(s["num_misses"])
    return {
        name: {
            "recall": tp / max(tp + fn, 1),
            "precision": tp / max(tp + fp, 1),
            "frames": len(times[name]),
            "ms_median": float(np.median(times[name])),
            "ms_p95": float(np.percentile(times[name], 95)),
            "cpu_ms_median": float(np.median(cpu_times[name])),
        }
        for name, (tp, fp, fn) in counts.items()
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
    t0 = time.time()
    detectors = {setting: build(setting) for setting in a.settings.split(",")}
    scores = evaluate(detectors, data, a.conf)
    results = [{"setting": k, "dataset": a.dataset, "conf": a.conf, **r} for k, r in scores.items()]
    for r in results:
        print(
            f"{a.dataset} {r['setting']:28s} recall {r['recall']:.3f} precision {r['precision']:.3f} "
            f"{r['ms_median']:6.1f} ms/frame (p95 {r['ms_p95']:.1f}), CPU {r['cpu_ms_median']:6.1f} ms/frame",
            flush=True,
        )
    print(f"{len(results)} settings interleaved in {time.time() - t0:.0f} s")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
