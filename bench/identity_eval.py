"""Cross-camera identity on the demo sets, in process: ``python bench/identity_eval.py [--layout demo|low_overlap]``.

Replays cached detections and embeddings of every camera of a layout (computed once with the default detector and
embedder, exactly what the services compute) through the default tracker, the cameras' calibrations and the
identity rule of reid_svc, and scores global ids with the kit: multi-camera IDF1, same-person precision/recall
for simultaneous sightings, global ids vs people, share of camera-to-camera handovers that keep the id.
Variants: with/without appearance, with/without floor gating. Layouts: ``demo`` (four overlapping cameras) and
``low_overlap`` (three cameras over disjoint parts of the floor: handovers across unseen ground).
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
from reid_svc.tracklets import TrackletWindow, WindowOptions
from spoton.demo.generate import DEFAULT_OUT, LOW_OVERLAP_OUT, generate
from spoton.evaluation import FrameBoxes, ground_truth_from_mot, matched_sightings, score_run
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


def detections_cache(demo_dir: Path, frames: int = 0, boxes: str = "detector", embedder: str = "mobilenetv2") -> dict:
    """Per camera, per frame: (detections, embeddings, width, height), computed once and kept in build/cache (per
    embedder: another embedder's cache lends its boxes, so only the embeddings are computed again).

    ``boxes``: "detector" (the default detector, what the services compute) or "truth" (the ground-truth boxes
    of the people counted, confidence 0.9: the association measured where the detector is not the subject).
    """
    tag = "" if boxes == "detector" else f"-{boxes}"
    stem = f"{demo_dir.name}{f'-{frames}' if frames else ''}{tag}_detections"
    cache = CACHE_DIR / f"{stem}{'' if embedder == 'mobilenetv2' else f'_{embedder}'}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from reid_svc.embedders import Embedder, crop_boxes
    from spoton.colour import CameraColour
    from spoton.domain import Detections

    name, _, weight = embedder.partition("+colour")
    emb = Embedder(name, colour_weight=float(weight or 0.0))
    colour = CameraColour()
    vs = load_video_set(demo_dir / "demo.yaml")
    if boxes == "truth":
        gt = ground_truth_from_mot({c.id: demo_dir / "gt" / f"{c.id}.txt" for c in vs.cameras}, frames)

        def detect(cam: str, index: int, image: np.ndarray) -> Detections:
            fb = gt[cam].get(index)
            if fb is None:
                return Detections.empty()
            h, w = image.shape[:2]
            xyxy = np.clip(fb.xyxy, 0, [w - 1, h - 1, w - 1, h - 1])
            xyxy = xyxy[(xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 4)]
            return Detections(xyxy, np.full(len(xyxy), 0.9), np.zeros(len(xyxy)))
    else:
        from detection_svc.detector import Detector

        det = Detector(REPO / "weights" / "best.onnx", (640, 480), "cpu", [0])

        def detect(cam: str, index: int, image: np.ndarray) -> Detections:
            return det.detect([image], 0.25, 0.5, 100)[0][0]

    base = CACHE_DIR / f"{stem}.pkl"
    known = pickle.loads(base.read_bytes()) if embedder != "mobilenetv2" and base.exists() else None
    data = {}
    for cam in vs.cameras:
        cap, rows = cv2.VideoCapture(vs.source_uri(cam)), []
        while not frames or len(rows) < frames:
            ok, image = cap.read()
            if not ok or (known is not None and len(rows) == len(known[cam.id])):
                break
            d = known[cam.id][len(rows)][0] if known is not None else detect(cam.id, len(rows) + 1, image)
            if emb.colour_weight:
                colour.observe(cam.id, crop_boxes(image, d.xyxy))
            gains = colour.gains(cam.id)
            rows.append((d, emb.embed_boxes(image, d.xyxy, gains)[0], image.shape[1], image.shape[0]))
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
    """Per step and camera: tracks (matched this frame), their floor points, embeddings and feet-cut flags."""
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
            step[c] = (tr, fp, e, tr.feet_cut(h))
        out.append(step)
    return out


FPS = 7


def _observations(step: dict, ts: int, appearance: bool = True, floor: bool = True) -> list[Observation]:
    """One tracked step as identity observations (embedding only for boxes detected this frame)."""
    obs = []
    for c, (tr, fp, e, cut) in step.items():
        for k in range(len(tr)):
            di = int(tr.det_index[k])
            emb = e[di] if appearance and di >= 0 else None
            flr = fp.xy_m[k] if floor and fp.valid[k] else None
            obs.append(Observation(c, int(tr.track_id[k]), ts, emb, flr, bool(cut[k])))
    return obs


def _messages(tracked: list[dict], ids: dict[tuple[str, int, int], int]) -> list[dict]:
    """DESIGN §3 step messages with global ids from ``ids`` (camera, track, frame) -> gid; boxes detected this
    frame only; unlabelled tracks left out."""
    messages = []
    for i, step in enumerate(tracked, start=1):
        cams = {}
        for c, (tr, fp, _, _) in step.items():
            cams[c] = {
                "frame_index": i,
                "tracks": [
                    {
                        "track_id": int(tr.track_id[k]),
                        "global_id": ids[(c, int(tr.track_id[k]), i)],
                        "bbox": tr.xyxy[k].tolist(),
                        "confidence": float(tr.confidence[k]),
                        "floor": fp.xy_m[k].tolist() if fp.valid[k] else None,
                    }
                    for k in range(len(tr))
                    if tr.det_index[k] >= 0 and (c, int(tr.track_id[k]), i) in ids
                ],
            }
        messages.append({"type": "step", "step": i, "cameras": cams})
    return messages


def associate(tracked: list[dict], options: AssociationOptions, appearance: bool, floor: bool) -> list[dict]:
    """reid_svc's online identity rule over tracked steps; returns DESIGN §3 step messages."""
    gallery = IdentityGallery(options)
    ids: dict[tuple[str, int, int], int] = {}
    for i, step in enumerate(tracked, start=1):
        for c, t, g in gallery.step(_observations(step, int((i - 1) / FPS * 1e9), appearance, floor)):
            ids[(c, t, i)] = g
    return _messages(tracked, ids)


def associate_window(tracked: list[dict], options: WindowOptions) -> dict:
    """reid_svc's tracklet window over tracked steps: live messages (ids as first sent), settled messages (ids
    once final), each sighting's tracklet, the changes sent, and the association's CPU seconds per step."""
    import time

    window = TrackletWindow(options)
    live: dict[tuple[str, int, int], int] = {}
    settled: dict[tuple[str, int, int], int] = {}
    tracklet_of: dict[tuple[str, int, int], int] = {}
    changes = 0
    cpu = []

    def keep(rows: list) -> None:
        for r in rows:
            f = round(r.ts_ns * FPS / 1e9) + 1
            settled[(r.camera_id, r.track_id, f)] = r.global_id
            tracklet_of[(r.camera_id, r.track_id, f)] = r.tracklet

    for i, step in enumerate(tracked, start=1):
        obs = _observations(step, int((i - 1) / FPS * 1e9))
        t0 = time.process_time()
        out = window.step(obs)
        cpu.append(time.process_time() - t0)
        for c, t, g in out.provisional:
            live[(c, t, i)] = g
        keep(out.settled)
        changes += len(out.changes)
    rows, last = window.flush()
    keep(rows)
    changes += len(last)
    return {
        "live": _messages(tracked, live),
        "settled": _messages(tracked, settled),
        "tracklet_of": tracklet_of,
        "changes": changes,
        "cuts": dict(window.cuts),
        "cpu_ms_per_step": 1000 * float(np.mean(cpu)) if cpu else 0.0,
        "cpu_ms_p95": 1000 * float(np.percentile(cpu, 95)) if cpu else 0.0,
    }


def sighting_truth(gt: dict, tracked: list[dict]) -> dict[tuple[str, int, int], int]:
    """(camera, track, frame) -> ground-truth person for every tracked box matched to the truth (IoU >= 0.5)."""
    hyp: dict[str, dict[int, FrameBoxes]] = {}
    for i, step in enumerate(tracked, start=1):
        for c, (tr, _fp, _, _) in step.items():
            keep = tr.det_index >= 0
            hyp.setdefault(c, {})[i] = FrameBoxes(tr.track_id[keep].astype(np.int64), tr.xyxy[keep])
    gt_cov = {c: {f: fb for f, fb in gt[c].items() if f <= len(tracked)} for c in gt}
    return {(c, t, f): g for c, f, g, t in matched_sightings(gt_cov, hyp)}


def purity_and_bound(gt: dict, tracked: list[dict], pieces: dict[tuple[str, int, int], object]) -> dict:
    """Purity of ``pieces`` (sighting -> piece key: the share of matched sightings whose truth is their piece's
    majority) and the multi-camera IDF1 bound of labelling every piece with its majority truth (perfect
    association of these pieces)."""
    from collections import Counter

    truth = sighting_truth(gt, tracked)
    votes: dict[object, Counter] = {}
    for key, piece in pieces.items():
        if key in truth:
            votes.setdefault(piece, Counter())[truth[key]] += 1
    majority = {p: v.most_common(1)[0] for p, v in votes.items()}
    matched = sum(sum(v.values()) for v in votes.values())
    purity = sum(n for _, n in majority.values()) / matched if matched else 0.0
    # Pieces with no matched sighting keep an id of their own (false positives stay false positives).
    ids, spare = {}, 10**6
    label: dict[object, int] = {}
    for p in set(pieces.values()):
        if p in majority:
            label[p] = majority[p][0]
        else:
            label[p] = spare
            spare += 1
    ids = {k: label[p] for k, p in pieces.items()}
    bound = score_run(gt, _messages(tracked, ids))["multi_camera"]["idf1"]
    return {"purity": purity, "pieces": len(set(pieces.values())), "oracle_idf1": bound}


def pure_pieces(gt: dict, tracked: list[dict]) -> dict[tuple[str, int, int], object]:
    """Local tracks cut wherever their matched ground-truth person changes: ground-truth-pure tracklets."""
    truth = sighting_truth(gt, tracked)
    pieces: dict[tuple[str, int, int], object] = {}
    current: dict[tuple[str, int], tuple[int | None, int]] = {}
    for i, step in enumerate(tracked, start=1):
        for c, (tr, _, _, _) in step.items():
            for k in range(len(tr)):
                if tr.det_index[k] < 0:
                    continue
                t = int(tr.track_id[k])
                g = truth.get((c, t, i))
                person, n = current.get((c, t), (None, 0))
                if g is not None and g != person:
                    current[(c, t)] = (g, n + 1) if person is not None else (g, n)
                    person, n = current[(c, t)]
                elif (c, t) not in current:
                    current[(c, t)] = (person, n)
                pieces[(c, t, i)] = (c, t, n)
    return pieces


def service_defaults(embedder: str = "mobilenetv2") -> tuple[AssociationOptions, str]:
    """The association options and tracker a session gets by default (reid_svc and tracking_svc settings)."""
    from reid_svc.embedders import network
    from tracking_svc.config import TrackingSettings

    threshold = network(embedder.partition("+colour")[0]).reentry_threshold
    return AssociationOptions(reentry_threshold=threshold), TrackingSettings().tracker_type


def variants(base: AssociationOptions, tracker: str) -> dict[str, tuple[AssociationOptions, bool, bool, str]]:
    """name -> (options, use appearance, use floor, tracker)."""
    return {
        "appearance + floor (default)": (base, True, True, tracker),
        "floor only": (replace(base, floor_weight=1.0), False, True, tracker),
        "appearance only": (replace(base, reentry_threshold=base.match_threshold), True, False, tracker),
        "default + appearance re-entry at 0.75": (replace(base, reentry_threshold=0.75), True, True, tracker),
        "default on BoT-SORT tracks": (base, True, True, "botsort"),
    }


def window_variants(base: AssociationOptions, tracker: str) -> dict[str, tuple[WindowOptions, str]]:
    """name -> (tracklet window options, tracker); the online-rule prior runs with the service's options."""
    return {
        "tracklet window (default)": (WindowOptions(), tracker),
        "tracklet window on BoT-SORT tracks": (WindowOptions(), "botsort"),
        "tracklet window with the online prior": (WindowOptions(prior=base), tracker),
    }


def _row(layout: str, name: str, trk: str, steps: int, ids: str, res: dict) -> dict:
    m = res["multi_camera"]
    per_camera_local = float(np.mean([c["idf1"] for c in res["cameras"].values()]))
    return (
        {"layout": layout, "variant": name, "ids": ids, "tracker": trk, "steps": steps}
        | {k: m[k] for k in SCORES}
        | {"per_camera_local_idf1": per_camera_local}
    )


def evaluate(
    demo_dir: Path,
    steps: int = 0,
    extra: dict | None = None,
    names: list[str] | None = None,
    window: dict | None = None,
    boxes: str = "detector",
    bounds: bool = True,
    embedder: str = "mobilenetv2",
) -> list[dict]:
    """Score every variant (or those in ``names``) on one layout's first ``steps`` steps (0 = all).

    Online-rule variants give one row (ids as sent: ``ids`` "live"); tracklet-window variants give a "live" row (ids
    as first sent) and a "settled" row (ids once final) with the window's purity, oracle bounds and CPU cost.
    ``window`` overrides WindowOptions fields of the window variants; ``bounds`` adds purity and oracle bounds.
    """
    vs = load_video_set(demo_dir / "demo.yaml")
    cameras = [c.id for c in vs.cameras]
    data = detections_cache(demo_dir, steps, boxes, embedder)
    tags = {"boxes": boxes, "embedder": embedder}
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
        results.append(_row(vs.name, name, trk, len(tracked[trk]), "live", res) | tags)
    for name, (wopts, trk) in window_variants(base, tracker).items():
        if names and name not in names:
            continue
        if window:
            wopts = replace(wopts, **window)
        if trk not in tracked:
            tracked[trk] = track_all(data, demo_dir, cameras, steps, trk)
        run = associate_window(tracked[trk], wopts)
        local = {
            (c, int(tr.track_id[k]), i): (c, int(tr.track_id[k]))
            for i, step in enumerate(tracked[trk], start=1)
            for c, (tr, _, _, _) in step.items()
            for k in range(len(tr))
            if tr.det_index[k] >= 0
        }
        extra_cols = {
            "changes": run["changes"],
            "cuts": run["cuts"],
            "assoc_cpu_ms_per_step": run["cpu_ms_per_step"],
            "assoc_cpu_ms_p95": run["cpu_ms_p95"],
        }
        if bounds:
            extra_cols |= {
                "tracklets": purity_and_bound(gt, tracked[trk], run["tracklet_of"]),
                "local_tracks": purity_and_bound(gt, tracked[trk], local),
                "pure_tracklets": purity_and_bound(gt, tracked[trk], pure_pieces(gt, tracked[trk])),
            }
        for ids in ("live", "settled"):
            res = score_run(gt, run[ids])
            results.append(_row(vs.name, name, trk, len(tracked[trk]), ids, res) | extra_cols | tags)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--layout", choices=[*LAYOUT_DIRS, "both"], default="both")
    p.add_argument("--grid", nargs="*", default=[], help="extra variants: name='{\"match_threshold\": 0.7}'")
    p.add_argument("--window", default="", help="tracklet window options, JSON: '{\"window_s\": 5}'")
    p.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    p.add_argument("--boxes", choices=["detector", "truth"], default="detector", help="detector or ground-truth boxes")
    p.add_argument("--embedder", default="mobilenetv2", help="REID_MODEL_TYPE whose embeddings are replayed")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "identity_eval.json")
    a = p.parse_args()
    extra = {name: json.loads(values) for name, values in (spec.split("=", 1) for spec in a.grid)}
    results = []
    for layout in LAYOUT_DIRS if a.layout == "both" else [a.layout]:
        demo_dir = LAYOUT_DIRS[layout]
        if not (demo_dir / "demo.yaml").exists():
            generate(demo_dir, layout=layout)
        window = json.loads(a.window) if a.window else None
        for row in evaluate(demo_dir, a.steps, extra, a.only, window, a.boxes, embedder=a.embedder):
            results.append(row)
            print(
                f"{row['layout']:17s} {row['variant']:38s} {row['ids']:7s} IDF1 {row['idf1']:.3f} "
                f"sw {int(row['num_switches']):3d} "
                f"ids {row['global_ids']:3d}/{row['gt_people']}  same-person P {row['same_person_precision'] or 0:.3f} "
                f"R {row['same_person_recall'] or 0:.3f}  handovers kept {row['handover_kept'] or 0:.3f} of "
                f"{row['handovers']}",
                flush=True,
            )
            if "tracklets" in row and row["ids"] == "settled":
                tk, lt, pt = row["tracklets"], row["local_tracks"], row["pure_tracklets"]
                print(
                    f"{'':17s} tracklets {tk['pieces']} purity {tk['purity']:.3f} oracle IDF1 {tk['oracle_idf1']:.3f}; "
                    f"local tracks {lt['pieces']} purity {lt['purity']:.3f} oracle {lt['oracle_idf1']:.3f}; "
                    f"truth-pure tracklets oracle {pt['oracle_idf1']:.3f}; changes {row['changes']} "
                    f"cuts {row['cuts']}; "
                    f"association CPU {row['assoc_cpu_ms_per_step']:.1f} ms/step (p95 {row['assoc_cpu_ms_p95']:.1f})",
                    flush=True,
                )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
