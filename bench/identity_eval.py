"""Cross-camera identity on the demo sets, in process: ``python bench/identity_eval.py [--layout demo|low_overlap]``.

Replays cached detections and embeddings of every camera of a layout (computed once with the default detector and
embedder, exactly what the services compute) through the default tracker, the cameras' calibrations and the
identity rule of reid_svc, and scores global ids with the kit: multi-camera IDF1, same-person precision/recall
for simultaneous sightings, global ids vs people, share of camera-to-camera handovers that keep the id.
Variants: with/without appearance, with/without floor gating. Layouts: ``demo`` (four overlapping cameras) and
``low_overlap`` (three cameras over disjoint parts of the floor: handovers across unseen ground).
``--embedder deepsort`` replays that network's embeddings of the same detections (and its re-entry threshold).
Writes ``bench/results/identity_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from mapping_svc.geometry import CameraGeometry, floor_sign
from reid_svc.identity import AssociationOptions, IdentityGallery, Observation
from spoton.demo.generate import DEFAULT_OUT, LOW_OVERLAP_OUT, generate
from spoton.evaluation import ground_truth_from_mot, score_run
from spoton.launcher import REPO
from spoton.videoset import load_video_set
from tracking_svc.trackers import CameraTracker

CACHE_DIR = REPO / "build" / "cache"
LAYOUT_DIRS = {"demo": DEFAULT_OUT, "low_overlap": LOW_OVERLAP_OUT}
SCORES = (
    "idf1",
    "mota",
    "num_switches",
    "global_ids",
    "gt_people",
    "same_person_precision",
    "same_person_recall",
    "same_person_pairs",
    "handover_kept",
    "handovers",
)


def detections_cache(demo_dir: Path, frames: int = 0, embedder: str = "mobilenetv2") -> dict:
    """Per camera, per frame: (detections, embeddings, width, height), computed once and kept in build/cache (per
    embedder; another embedder's cache lends its detections, so only the embeddings are computed again)."""
    stem = f"{demo_dir.name}{f'-{frames}' if frames else ''}_detections"
    cache = CACHE_DIR / f"{stem}{'' if embedder == 'mobilenetv2' else f'_{embedder}'}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from reid_svc.embedders import Embedder

    emb = Embedder(embedder)
    vs = load_video_set(demo_dir / "demo.yaml")
    base = CACHE_DIR / f"{stem}.pkl"
    known = pickle.loads(base.read_bytes()) if base.exists() else None
    if known is None:
        from detection_svc.detector import Detector

        det = Detector(REPO / "weights" / "best.onnx", (640, 480), "cpu", [0])
    data = {}
    for cam in vs.cameras:
        cap, rows = cv2.VideoCapture(vs.source_uri(cam)), []
        while not frames or len(rows) < frames:
            ok, image = cap.read()
            if not ok or (known is not None and len(rows) == len(known[cam.id])):
                break
            d = known[cam.id][len(rows)][0] if known is not None else det.detect([image], 0.25, 0.5, 100)[0][0]
            rows.append((d, emb.embed_boxes(image, d.xyxy)[0], image.shape[1], image.shape[0]))
        data[cam.id] = rows
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(data))
    return data


def track_all(
    data: dict,
    demo_dir: Path,
    cameras: list[str],
    steps: int = 0,
    tracker: str = "bytetrack",
    options: dict | None = None,
) -> list[dict]:
    """Per step and camera: tracks (matched this frame), their floor points and embeddings."""
    vs = load_video_set(demo_dir / "demo.yaml")
    trackers = {c: CameraTracker.create(tracker, options or {}, 7) for c in cameras}
    geos = {}
    for c in cameras:
        h = np.array(vs.camera(c).homography)
        w, hh = data[c][0][2], data[c][0][3]
        geos[c] = CameraGeometry(h, floor_sign(h, np.array([[w / 2, hh - 1]])))
    n = min(len(data[c]) for c in cameras)
    n = min(n, steps) if steps else n
    out = []
    for i in range(1, n + 1):
        step = {}
        for c in cameras:
            d, e, w, h = data[c][i - 1]
            keep = d.confidence >= 0.25
            d, e = d[keep], e[keep]
            tr = trackers[c].update(d, e, (w, h), i)
            fp = geos[c].project_boxes(tr.xyxy)
            step[c] = (tr, fp, e)
        out.append(step)
    return out


def associate(tracked: list[dict], options: AssociationOptions, appearance: bool, floor: bool) -> list[dict]:
    """reid_svc's identity rule over tracked steps; returns DESIGN §3 step messages."""
    gallery = IdentityGallery(options)
    messages = []
    for i, step in enumerate(tracked, start=1):
        ts = int((i - 1) / 7 * 1e9)
        obs = []
        for c, (tr, fp, e) in step.items():
            for k in range(len(tr)):
                di = int(tr.det_index[k])
                emb = e[di] if appearance and di >= 0 else None
                flr = fp.xy_m[k] if floor and fp.valid[k] else None
                obs.append(Observation(c, int(tr.track_id[k]), ts, emb, flr))
        gids = {(c, t): g for c, t, g in gallery.step(obs)}
        cams = {}
        for c, (tr, fp, _) in step.items():
            cams[c] = {
                "frame_index": i,
                "tracks": [
                    {
                        "track_id": int(tr.track_id[k]),
                        "global_id": gids[(c, int(tr.track_id[k]))],
                        "bbox": tr.xyxy[k].tolist(),
                        "confidence": float(tr.confidence[k]),
                        "floor": fp.xy_m[k].tolist() if fp.valid[k] else None,
                    }
                    for k in range(len(tr))
                    if tr.det_index[k] >= 0
                ],
            }
        messages.append({"type": "step", "step": i, "cameras": cams})
    return messages


def service_defaults(embedder: str = "mobilenetv2") -> tuple[AssociationOptions, str]:
    """The association options and tracker a session gets by default (reid_svc and tracking_svc settings)."""
    from reid_svc.embedders import network
    from tracking_svc.config import TrackingSettings

    return AssociationOptions(reentry_threshold=network(embedder).reentry_threshold), TrackingSettings().tracker_type


def variants(base: AssociationOptions, tracker: str) -> dict[str, tuple[AssociationOptions, bool, bool, str]]:
    """name -> (options, use appearance, use floor, tracker)."""
    return {
        "appearance + floor (default)": (base, True, True, tracker),
        "floor only": (replace(base, floor_weight=1.0), False, True, tracker),
        "appearance only": (replace(base, reentry_threshold=base.match_threshold), True, False, tracker),
        "default + appearance re-entry at 0.75": (replace(base, reentry_threshold=0.75), True, True, tracker),
        "default on BoT-SORT tracks": (base, True, True, "botsort"),
    }


def evaluate(
    demo_dir: Path,
    steps: int = 0,
    extra: dict | None = None,
    names: list[str] | None = None,
    embedder: str = "mobilenetv2",
) -> list[dict]:
    """Score every variant (or those in ``names``) on one layout's first ``steps`` steps (0 = all)."""
    vs = load_video_set(demo_dir / "demo.yaml")
    cameras = [c.id for c in vs.cameras]
    data = detections_cache(demo_dir, steps, embedder)
    gt = ground_truth_from_mot({c: demo_dir / "gt" / f"{c}.txt" for c in cameras}, steps)
    base, tracker = service_defaults(embedder)
    todo = variants(base, tracker)
    todo |= {k: (AssociationOptions.from_dict(base, v), True, True, tracker) for k, v in (extra or {}).items()}
    tracked: dict[str, list[dict]] = {}
    results = []
    for name, (opts, app, flr, trk) in todo.items():
        if names and name not in names:
            continue
        if trk not in tracked:
            tracked[trk] = track_all(data, demo_dir, cameras, steps, trk)
        res = score_run(gt, associate(tracked[trk], opts, app, flr))
        m = res["multi_camera"]
        per_camera_local = float(np.mean([c["idf1"] for c in res["cameras"].values()]))
        results.append(
            {"layout": vs.name, "embedder": embedder, "variant": name, "tracker": trk, "steps": len(tracked[trk])}
            | {k: m[k] for k in SCORES}
            | {"per_camera_local_idf1": per_camera_local}
        )
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--layout", choices=[*LAYOUT_DIRS, "both"], default="both")
    p.add_argument("--grid", nargs="*", default=[], help="extra variants: name='{\"match_threshold\": 0.7}'")
    p.add_argument("--embedder", default="mobilenetv2", help="REID_MODEL_TYPE whose embeddings are replayed")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "identity_eval.json")
    a = p.parse_args()
    extra = {name: json.loads(values) for name, values in (spec.split("=", 1) for spec in a.grid)}
    results = []
    for layout in LAYOUT_DIRS if a.layout == "both" else [a.layout]:
        demo_dir = LAYOUT_DIRS[layout]
        if not (demo_dir / "demo.yaml").exists():
            generate(demo_dir, layout=layout)
        for row in evaluate(demo_dir, a.steps, extra, embedder=a.embedder):
            results.append(row)
            print(
                f"{row['layout']:17s} {row['embedder']:11s} {row['variant']:30s} IDF1 {row['idf1']:.3f} "
                f"sw {int(row['num_switches']):3d} "
                f"ids {row['global_ids']:3d}/{row['gt_people']}  same-person P {row['same_person_precision'] or 0:.3f} "
                f"R {row['same_person_recall'] or 0:.3f}  handovers kept {row['handover_kept'] or 0:.3f} of "
                f"{row['handovers']}",
                flush=True,
            )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
