"""Detection schedules replayed per camera on cached detections, without the services:
``python bench/schedule_eval.py --frames 200 --schedules every,fixed:2,fixed:2/detections``.

The demo cameras' detections on every frame are computed once with the detection service's own detector and
settings (``DETECTOR_*``; the default is ``auto``) and cached in build/cache. Each schedule then decides per frame
whether the camera is detected, and the code the gateway and tracking_svc run (``DetectionSchedule``,
``DetectionCarrier``, ``FlowPredictor``, ``CameraTracker.update``/``predict``) makes each frame's output boxes, which
are scored per camera (recall, precision, IDF1, MOTA, ID switches) against the ground truth, every frame counted.
Per camera only: cross-camera identity needs reid, so the figures that decide a default come from
``bench/e2e.py --schedules`` (the same specs). Differences from the service run: frames are not JPEG-encoded
before detection, and the adaptive mode sees each detected frame's tracks at once (the pipeline's report lags by
a few steps). CPU ms per camera-frame of the tracker plus the flow is printed too. Writes
``bench/results/schedule_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.e2e import ALL_CAMERAS, schedule_options  # noqa: E402
from gateway.schedule import (  # noqa: E402
    DetectionCarrier,
    DetectionSchedule,
    FlowPredictor,
    SchedulePolicy,
    flow_grey,
    motion_thumb,
)
from spoton.demo.generate import DEFAULT_OUT, generate  # noqa: E402
from spoton.domain import Detections  # noqa: E402
from spoton.evaluation import FrameBoxes, ground_truth_from_mot, score_camera  # noqa: E402
from spoton.videoset import load_video_set  # noqa: E402
from tracking_svc.trackers import CameraTracker  # noqa: E402

CACHE_DIR = REPO / "build" / "cache"


def camera_frames(demo_dir: Path, camera_id: str, frames: int) -> list[np.ndarray]:
    vs = load_video_set(demo_dir / "demo.yaml")
    cap, out = cv2.VideoCapture(vs.source_uri(vs.camera(camera_id))), []
    while not frames or len(out) < frames:
        ok, image = cap.read()
        if not ok:
            break
        out.append(image)
    cap.release()
    return out


def cached_detections(demo_dir: Path, frames: int) -> tuple[str, dict[str, list[Detections]]]:
    """The detection service's detector (its settings from the environment) on every frame of every demo camera,
    cached per backend/weights/size."""
    from detection_svc.config import DetectionSettings
    from detection_svc.detector import Detector

    s = DetectionSettings()
    backend, weights = s.resolve()
    tag = f"{backend}-{weights.name}-{s.detector_input_size}-{s.detection_confidence_threshold}"
    cache = CACHE_DIR / f"schedule-{demo_dir.name}-{frames}-{tag}.pkl"
    if cache.exists():
        return tag, pickle.loads(cache.read_bytes())
    det = Detector(
        weights, s.input_wh, "cpu", s.class_ids, s.detector_batch, backend=backend, runtime=s.runtime_options
    )
    det.warmup()
    conf, iou, max_det = s.detection_confidence_threshold, s.detection_iou_threshold, s.detection_max_detections
    data = {}
    for cam in ALL_CAMERAS:
        images = camera_frames(demo_dir, cam, frames)
        data[cam] = [d for i in range(0, len(images), 4) for d in det.detect(images[i : i + 4], conf, iou, max_det)[0]]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(data))
    return tag, data


def replay(
    policy: SchedulePolicy, images: list[np.ndarray], dets: list[Detections], tracker: str, camera_id: str = "c"
) -> tuple[dict[int, FrameBoxes], float, float]:
    """One camera under ``policy``: output boxes per 1-based frame, detected share, CPU ms per frame (tracker,
    flow and schedule; detection itself not counted)."""
    schedule = DetectionSchedule(policy)
    tr = CameraTracker.create(tracker, {}, fps=7.0)
    carrier = DetectionCarrier() if policy.carries_detections else None
    flow = FlowPredictor() if policy.uses_flow and carrier is None else None
    out: dict[int, FrameBoxes] = {}
    cpu = 0.0
    no_emb = np.zeros((0, 0), np.float32)
    for i, (image, found) in enumerate(zip(images, dets, strict=True), start=1):
        thumb = motion_thumb(image) if policy.mode == "motion" else None
        c0 = time.process_time()
        grey = flow_grey(image) if policy.uses_flow else None
        wh = (image.shape[1], image.shape[0])
        detected = schedule.decide(camera_id, thumb)
        carried = None
        if carrier is not None:
            carried = carrier.step(camera_id, grey, found if detected else Detections.empty(), no_emb, detected, wh)
        if detected:
            tracks = tr.update(found, None, wh, i, show_births=carrier is not None and schedule.next_skipped(camera_id))
            schedule.observe(camera_id, tracks)
        elif carried is not None:
            tracks = tr.update(carried[0], None, wh, i)
        else:
            tracks = tr.predict(wh, i)
        if flow is not None:
            tracks = flow.step(camera_id, grey, tracks, detected, wh)
        cpu += time.process_time() - c0
        out[i] = FrameBoxes(tracks.track_id, tracks.xyxy.astype(np.float64))
    return out, schedule.detected / max(schedule.frames, 1), cpu * 1000 / max(len(images), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=200, help="frames per camera from the start (0 = whole video)")
    p.add_argument("--schedules", default="every,fixed:2,fixed:2/flow,fixed:2/detections")
    p.add_argument("--tracker", default="bytetrack")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "schedule_eval.json")
    a = p.parse_args()
    if not (DEFAULT_OUT / "demo.yaml").exists():
        generate(DEFAULT_OUT)
    tag, dets = cached_detections(DEFAULT_OUT, a.frames)
    n = min(len(v) for v in dets.values())
    gt = ground_truth_from_mot({c: DEFAULT_OUT / "gt" / f"{c}.txt" for c in ALL_CAMERAS}, n)
    images = {c: camera_frames(DEFAULT_OUT, c, n) for c in ALL_CAMERAS}
    rows = []
    for spec in filter(None, a.schedules.split(",")):
        o = schedule_options(spec)
        policy = SchedulePolicy(
            o["detection_schedule"],
            o["detect_every"],
            o.get("motion_threshold", SchedulePolicy.motion_threshold),
            o.get("schedule_prediction", "kalman"),
        )
        row = {"schedule": spec, "cameras": {}}
        for cam in ALL_CAMERAS:
            hyp, share, cpu_ms = replay(policy, images[cam], dets[cam][:n], a.tracker, cam)
            s = score_camera(gt[cam], hyp, range(1, n + 1))
            row["cameras"][cam] = {
                "detected_share": round(share, 3),
                "cpu_ms_per_frame": round(cpu_ms, 2),
                **{k: round(s[k], 3) for k in ("recall", "precision", "idf1", "mota", "num_switches")},
            }
        cams = row["cameras"].values()
        for k in ("detected_share", "cpu_ms_per_frame", "recall", "precision", "idf1", "mota"):
            row[f"mean_{k}"] = round(float(np.mean([c[k] for c in cams])), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"detector": tag, "frames": n, "tracker": a.tracker, "rows": rows}, indent=2))
    print(f"\n{n} frames per camera, detector {tag}, tracker {a.tracker}")
    print(
        "| schedule | detected | recall per camera | mean recall | mean precision | mean IDF1 | tracker+flow CPU ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rec = "/".join(f"{c['recall']:.3f}" for c in r["cameras"].values())
        print(
            f"| {r['schedule']} | {r['mean_detected_share']:.2f} | {rec} | {r['mean_recall']:.3f} "
            f"| {r['mean_precision']:.3f} | {r['mean_idf1']:.3f} | {r['mean_cpu_ms_per_frame']:.1f} |"
        )


if __name__ == "__main__":
    main()
