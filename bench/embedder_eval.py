"""Appearance embedders on the demo cameras' ground truth: ``python bench/embedder_eval.py [--every 10]``.

Crops every ground-truth box (counted, at least ``--min-height`` px tall) of every ``--every``-th frame of each demo
camera, embeds them with each embedder (``mobilenetv2``, ``deepsort``, …) and scores, over pairs of crops from
DIFFERENT cameras:
  * same/different AUC: how well the cosine similarity separates the same person from different people (all
    cross-camera pairs, and only pairs at least ``--gap-s`` seconds apart, where the same instant's near-identical
    pixels in two warped views cannot help);
  * rank-1: for each crop, whether the most similar crop of another camera shows the same person (same two
    windows);
  * the same over tracklets: the mean embedding of each person's crops in one camera within ``--tracklet-s``
    seconds (what the identity gallery and person search compare: banks and their means, not single crops);
  * the similarity distributions (median, p5/p95) and the threshold at which 5 % of different-people pairs
    (>= gap apart) pass, i.e. a re-entry threshold candidate;
  * ms per crop per runtime (ONNX Runtime — what reid_svc runs on CPU —, eager PyTorch, OpenVINO on the same ONNX
    file), batch ``--batch``, runtimes interleaved in one loop so machine load hits them alike.
Writes ``bench/results/embedder_eval.json``. The demo cameras are warps of one real view (DESIGN §4): the same
person in two cameras differs by viewpoint warp, colour balance and noise, not by a real second viewpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import rankdata

from reid_svc.embedders import Embedder, crop_boxes
from spoton.demo.data import load_mot
from spoton.demo.generate import DEFAULT_OUT, generate
from spoton.domain import l2_normalize
from spoton.videoset import load_video_set

FPS = 7.0


@dataclass
class Crops:
    """Ground-truth crops: BGR images and, per crop, camera index, person id and frame index."""

    images: list[np.ndarray]
    camera: np.ndarray
    person: np.ndarray
    frame: np.ndarray
    cameras: list[str]


def gt_crops(demo_dir: Path, every: int = 10, min_height: int = 48) -> Crops:
    """Every counted ground-truth box at least ``min_height`` px tall in frames 1, 1+every, … of each camera."""
    vs = load_video_set(demo_dir / "demo.yaml")
    images, cams, pids, frames = [], [], [], []
    names = [c.id for c in vs.cameras]
    for k, cam in enumerate(vs.cameras):
        gt = load_mot(demo_dir / "gt" / f"{cam.id}.txt")
        gt = gt[(gt[:, 6] == 1) & (gt[:, 5] >= min_height)]
        cap = cv2.VideoCapture(vs.source_uri(cam))
        index = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            index += 1
            if (index - 1) % every:
                continue
            rows = gt[gt[:, 0] == index]
            if not len(rows):
                continue
            xyxy = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]])
            images += crop_boxes(image, xyxy)
            cams += [k] * len(rows)
            pids += rows[:, 1].astype(int).tolist()
            frames += [index] * len(rows)
        cap.release()
    return Crops(images, np.array(cams), np.array(pids), np.array(frames), names)


def auc(scores_same: np.ndarray, scores_diff: np.ndarray) -> float:
    """Probability that a same-person pair scores above a different-people pair (Mann-Whitney, ties halved)."""
    ranks = rankdata(np.concatenate([scores_same, scores_diff]))
    n1, n2 = len(scores_same), len(scores_diff)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n2))


def score(emb: np.ndarray, crops: Crops, min_gap_frames: int) -> dict:
    """AUC, rank-1 and similarity statistics over cross-camera pairs at least ``min_gap_frames`` apart."""
    sim = emb @ emb.T
    allowed = (crops.camera[:, None] != crops.camera[None, :]) & (
        np.abs(crops.frame[:, None] - crops.frame[None, :]) >= min_gap_frames
    )
    same = crops.person[:, None] == crops.person[None, :]
    upper = np.triu(np.ones_like(allowed), 1)
    s_same, s_diff = sim[allowed & same & upper], sim[allowed & ~same & upper]
    masked = np.where(allowed, sim, -np.inf)
    best = masked.argmax(axis=1)
    has_match = (allowed & same).any(axis=1)
    rank1 = crops.person[best][has_match] == crops.person[has_match]
    return {
        "auc": auc(s_same, s_diff),
        "rank1": float(rank1.mean()),
        "queries": int(has_match.sum()),
        "same_pairs": len(s_same),
        "different_pairs": len(s_diff),
        "same_median": float(np.median(s_same)),
        "same_p5": float(np.percentile(s_same, 5)),
        "different_median": float(np.median(s_diff)),
        "different_p95": float(np.percentile(s_diff, 95)),
    }


def tracklets(emb: np.ndarray, crops: Crops, window_frames: int) -> tuple[np.ndarray, Crops]:
    """Mean embeddings (L2-normalised) of each (camera, person, window of ``window_frames``) group of crops."""
    keys = np.column_stack([crops.camera, crops.person, (crops.frame - 1) // window_frames])
    groups, inverse = np.unique(keys, axis=0, return_inverse=True)
    means = np.zeros((len(groups), emb.shape[1]), np.float32)
    np.add.at(means, inverse.reshape(-1), emb)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    frames = groups[:, 2] * window_frames + 1
    return means, Crops([], groups[:, 0], groups[:, 1], frames, crops.cameras)


def runtimes(embedder: Embedder, threads: int, torch_eager: bool = True) -> dict:
    """name -> callable(batch NCHW float32) -> (N, D): reid_svc's CPU runtimes (``REID_BACKEND`` onnx and
    openvino, as the service opens them, ``threads`` inference threads) and eager PyTorch for reference."""
    import torch

    from reid_svc.embedders import network

    out = {}
    for backend in ("onnx", "openvino"):
        try:
            e = Embedder(embedder.info.name, embedder.weights, embedder.input_wh, backend=backend, threads=threads)
        except ImportError:
            continue
        out[e.info.backend] = e._run
    if not torch_eager:
        return out
    model = network(embedder.info.name).build(embedder.weights, embedder.input_wh).eval()

    def eager(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    out["torch"] = eager
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-dir", type=Path, default=DEFAULT_OUT)
    p.add_argument("--embedders", nargs="+", default=["mobilenetv2", "deepsort"])
    p.add_argument("--every", type=int, default=10, help="every N-th frame of each camera")
    p.add_argument("--min-height", type=int, default=48, help="smallest ground-truth box used (px)")
    p.add_argument("--gap-s", type=float, default=10.0, help="the stricter window: pairs at least this far apart")
    p.add_argument("--tracklet-s", type=float, default=5.0, help="window of a tracklet's mean embedding")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="inference threads of each runtime (REID_THREADS)")
    p.add_argument("--speed-only", action="store_true", help="skip the accuracy scores")
    p.add_argument("--torch", action=argparse.BooleanOptionalAction, default=True, help="also time eager PyTorch")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "embedder_eval.json")
    a = p.parse_args()
    if not (a.demo_dir / "demo.yaml").exists():
        generate(a.demo_dir)
    crops = gt_crops(a.demo_dir, a.every, a.min_height)
    embedders = {name: Embedder(name) for name in a.embedders}
    print(
        f"{len(crops.images)} crops of {len(np.unique(crops.person))} people in {len(crops.cameras)} cameras "
        f"(every {a.every}th frame, boxes >= {a.min_height} px)",
        flush=True,
    )
    results: dict = {
        "crops": len(crops.images),
        "people": len(np.unique(crops.person)),
        "cameras": crops.cameras,
        "every": a.every,
        "min_height_px": a.min_height,
        "gap_s": a.gap_s,
        "embedders": {},
    }
    gap = round(a.gap_s * FPS)
    for name, e in embedders.items():
        row = {"embedding_dim": e.info.embedding_dim, "input_wh": list(e.input_wh), "backend": e.info.backend}
        results["embedders"][name] = row
        if a.speed_only:
            continue
        emb = e.embed(crops.images)
        row["cross_camera"] = score(emb, crops, 0)
        row[f"cross_camera_{a.gap_s:g}s_apart"] = score(emb, crops, gap)
        t_emb, t_crops = tracklets(emb, crops, round(a.tracklet_s * FPS))
        row[f"tracklets_{a.tracklet_s:g}s_cross_camera"] = score(t_emb, t_crops, 0)
        row[f"tracklets_{a.tracklet_s:g}s_cross_camera_{a.gap_s:g}s_apart"] = score(t_emb, t_crops, gap)
        # Flip test-time augmentation (a cheap lever, 2x the cost per crop): the mean of a crop's and its mirror's.
        flipped = l2_normalize(emb + e.embed([c[:, ::-1] for c in crops.images]))
        row["cross_camera_flip_tta"] = score(flipped, crops, 0)
        row[f"cross_camera_flip_tta_{a.gap_s:g}s_apart"] = score(flipped, crops, gap)
        t_emb, t_crops = tracklets(flipped, crops, round(a.tracklet_s * FPS))
        row[f"tracklets_{a.tracklet_s:g}s_cross_camera_flip_tta"] = score(t_emb, t_crops, 0)
    # Speed: every runtime of every network, interleaved, on the same batch of real crops.
    fns = {(n, r): f for n, e in embedders.items() for r, f in runtimes(e, a.threads, a.torch).items()}
    batch = {n: e.preprocess(crops.images[: a.batch]) for n, e in embedders.items()}
    times: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    for k, f in fns.items():
        f(batch[k[0]])  # warm-up
    for _ in range(a.repeats):
        for k, f in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            f(batch[k[0]])
            times[k].append((time.perf_counter() - start) * 1000 / a.batch)
            cpu[k].append((time.process_time() - start_cpu) * 1000 / a.batch)
    for (n, r), t in times.items():
        results["embedders"][n].setdefault("ms_per_crop", {})[r] = float(np.median(t))
        # CPU time of the process per crop: what a crop costs whatever else the machine runs.
        results["embedders"][n].setdefault("cpu_ms_per_crop", {})[r] = float(np.median(cpu[(n, r)]))
    for n, row in results["embedders"].items():
        for window in (k for k in row if k.startswith(("cross_camera", "tracklets"))):
            s = row[window]
            print(
                f"{n:12s} {window:36s} AUC {s['auc']:.3f} rank-1 {s['rank1']:.3f} "
                f"same {s['same_median']:.2f} (p5 {s['same_p5']:.2f}) diff {s['different_median']:.2f} "
                f"(p95 {s['different_p95']:.2f})",
                flush=True,
            )
        print(
            f"{n:12s} ms/crop (CPU ms/crop) "
            + ", ".join(f"{r} {v:.2f} ({row['cpu_ms_per_crop'][r]:.2f})" for r, v in row["ms_per_crop"].items()),
            flush=True,
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
