"""Identity embeddings under a budget, replayed in process: ``python bench/identity_budget.py [--layout both]``.

Replays the cached detections and per-detection embeddings of ``bench/identity_eval.py`` (the default detector
or ground-truth boxes, per embedder) through the default tracker and the calibrations, and feeds reid's identity
rule the way the gateway now does: each track's latest identity embedding, taken only when the session's budget
(``gateway/identity_embed.py``, the gateway's own code) chooses that track. The budget reads the real frames for
its sharpness gate. Per layout, embedder and budget: multi-camera IDF1, global ids vs people, same-person P/R,
identity crops embedded per step (vs every tracked detection: the old cost) and the CPU ms per step that costs at
``--ms-per-crop`` (default: the embedder's measured OpenVINO CPU ms per crop, ``bench/embedder_eval.py``).

Budgets are ``every`` or ``budget[:key=value,...]`` with IdentityBudget's keys (every_s, max_covered,
min_sharpness, max_per_step); ``/fresh`` sends an embedding to association only on the step it was taken (the
default sends the latest every step). Writes ``bench/results/identity_budget.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.identity_eval import FPS, LAYOUT_DIRS, _messages, detections_cache, service_defaults, track_all
from gateway.identity_embed import IdentityBudget, IdentityEmbedder
from reid_svc.identity import IdentityGallery, Observation
from spoton.demo.generate import generate
from spoton.evaluation import ground_truth_from_mot, score_run
from spoton.videoset import load_video_set

DEFAULT_BUDGETS = [
    "every",
    "budget:every_s=1",
    "budget:every_s=2",
    "budget:every_s=4",
    "budget:every_s=2,max_covered=1",
    "budget:every_s=2,max_covered=0",
    "budget:every_s=2,min_sharpness=50",
    "budget:every_s=2/fresh",
]


def parse_budget(spec: str) -> tuple[IdentityBudget, bool]:
    """``every`` | ``budget[:k=v,...]``, optionally ``/fresh`` -> (budget, send the latest every step)."""
    spec, _, send = spec.partition("/")
    mode, _, rest = spec.partition(":")
    values: dict = {}
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=")
        values[k] = int(v) if k == "max_per_step" else float(v)
    return IdentityBudget(mode=mode, **values), send != "fresh"


@dataclass
class Run:
    """One budget's replay state: the budget's bookkeeping, the gallery, ids given, crops per step."""

    spec: str
    embedder: IdentityEmbedder
    latest: bool
    gallery: IdentityGallery
    ids: dict = field(default_factory=dict)
    crops: list = field(default_factory=list)


def replay(demo_dir: Path, steps: int, boxes: str, embedder: str, specs: list[str]) -> list[dict]:
    vs = load_video_set(demo_dir / "demo.yaml")
    cameras = [c.id for c in vs.cameras]
    data = detections_cache(demo_dir, steps, boxes, embedder)
    options, tracker = service_defaults(embedder)
    tracked = track_all(data, demo_dir, cameras, steps, tracker)
    runs = []
    for spec in specs:
        budget, latest = parse_budget(spec)
        runs.append(Run(spec, IdentityEmbedder(budget), latest, IdentityGallery(options)))
    caps = {c: cv2.VideoCapture(vs.source_uri(vs.camera(c))) for c in cameras}
    policy_cpu = {r.spec: 0.0 for r in runs}
    for i, step in enumerate(tracked, start=1):
        ts = int((i - 1) / FPS * 1e9)
        images = {c: caps[c].read()[1] for c in cameras}
        for r in runs:
            t0 = time.process_time()
            chosen = []
            for c, (tr, _fp, _e, _cut) in step.items():
                d = data[c][i - 1][0]
                keep = d.confidence >= 0.25  # what track_all fed the tracker (its det_index counts these)
                chosen += r.embedder.choose(c, ts, tr, d[keep], lambda im=images[c]: im)
            chosen = r.embedder.cap(chosen)
            policy_cpu[r.spec] += time.process_time() - t0
            fresh = set()
            for ch in chosen:
                tr, _fp, e, _cut = step[ch.camera_id]
                k = int(np.flatnonzero(tr.track_id == ch.track_id)[0])
                r.embedder.remember(ch, e[int(tr.det_index[k])], ts)
                fresh.add((ch.camera_id, ch.track_id))
            r.crops.append(len(chosen))
            obs = []
            for c, (tr, fp, _e, _cut) in step.items():
                for k in range(len(tr)):
                    t = int(tr.track_id[k])
                    emb = r.embedder.latest(c, t) if r.latest or (c, t) in fresh else None
                    obs.append(Observation(c, t, ts, emb, fp.xy_m[k] if fp.valid[k] else None))
            for c, t, g in r.gallery.step(obs):
                r.ids[(c, t, i)] = g
    for cap in caps.values():
        cap.release()
    gt = ground_truth_from_mot({c: demo_dir / "gt" / f"{c}.txt" for c in cameras}, steps)
    rows = []
    for r in runs:
        m = score_run(gt, _messages(tracked, r.ids))["multi_camera"]
        rows.append(
            {
                "layout": vs.name,
                "embedder": embedder,
                "boxes": boxes,
                "budget": r.spec,
                "steps": len(tracked),
                "idf1": m["idf1"],
                "global_ids": m["global_ids"],
                "gt_people": m["gt_people"],
                "same_person_precision": m["same_person_precision"],
                "same_person_recall": m["same_person_recall"],
                "crops_per_step": float(np.mean(r.crops)),
                "crops_per_step_p95": float(np.percentile(r.crops, 95)),
                "tracked_detections_per_step": r.embedder.candidates / len(tracked),
                "policy_cpu_ms_per_step": policy_cpu[r.spec] * 1000 / len(tracked),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", choices=[*LAYOUT_DIRS, "both"], default="both")
    p.add_argument("--steps", type=int, default=0, help="first N steps (0 = whole videos)")
    p.add_argument("--boxes", choices=["detector", "truth"], default="detector")
    p.add_argument("--embedders", nargs="+", default=["mobilenetv2", "deepsort"])
    p.add_argument("--budgets", nargs="+", default=DEFAULT_BUDGETS)
    p.add_argument(
        "--ms-per-crop",
        default="",
        help="embedder=CPU ms per crop,... for the cost column (default: bench/results/embedder_eval.json's OpenVINO)",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "identity_budget.json")
    a = p.parse_args()
    ms: dict[str, float] = {}
    evaluated = Path(__file__).resolve().parent / "results" / "embedder_eval.json"
    if evaluated.exists():
        for name, row in json.loads(evaluated.read_text())["embedders"].items():
            ms[name] = row.get("cpu_ms_per_crop", {}).get("openvino") or row.get("ms_per_crop", {}).get("openvino", 0)
    for kv in filter(None, a.ms_per_crop.split(",")):
        k, v = kv.split("=")
        ms[k] = float(v)
    rows = []
    for layout in LAYOUT_DIRS if a.layout == "both" else [a.layout]:
        demo_dir = LAYOUT_DIRS[layout]
        if not (demo_dir / "demo.yaml").exists():
            generate(demo_dir, layout=layout)
        for embedder in a.embedders:
            for row in replay(demo_dir, a.steps, a.boxes, embedder, a.budgets):
                row["embed_cpu_ms_per_step"] = row["crops_per_step"] * ms.get(embedder, float("nan"))
                rows.append(row)
                print(
                    f"{row['layout']:17s} {embedder:12s} {row['budget']:36s} IDF1 {row['idf1']:.3f} "
                    f"ids {row['global_ids']:3d}/{row['gt_people']} P {row['same_person_precision'] or 0:.3f} "
                    f"R {row['same_person_recall'] or 0:.3f}  crops/step {row['crops_per_step']:.2f} "
                    f"(p95 {row['crops_per_step_p95']:.0f}; tracked {row['tracked_detections_per_step']:.2f}) "
                    f"embed CPU {row['embed_cpu_ms_per_step']:.1f} ms/step, policy {row['policy_cpu_ms_per_step']:.2f}",
                    flush=True,
                )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
