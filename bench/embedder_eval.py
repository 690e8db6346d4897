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
With ``--levers``, also cheap accuracy levers at inference (``variants`` in the JSON; issue #25): per-camera colour
constancy (gray-world gains or per-channel histogram matching, from ``--colour-frames`` whole frames of each camera
or from the person crops of other frames; and the generator's own gains undone, as a bound),
fusion of the networks' cosine similarities, an HSV colour histogram of the upper and lower body, MobileNetV2 at
128x256 with flip TTA; each with its CPU ms per crop (``time.process_time``, all its steps).
Writes ``bench/results/embedder_eval.json``. The demo cameras are warps of one real view (DESIGN §4): the same
person in two cameras differs by viewpoint warp, colour balance and noise, not by a real second viewpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import rankdata

from reid_svc.embedders import Embedder, colour_histogram, crop_boxes
from spoton.colour import CameraColour
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


def gt_crops(demo_dir: Path, every: int = 10, min_height: int = 48, offset: int = 0) -> Crops:
    """Every counted ground-truth box at least ``min_height`` px tall in frames 1, 1+every, … (each shifted by
    ``offset``) of each camera."""
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
            if (index - 1 - offset) % every:
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


def camera_frames(demo_dir: Path, samples: int = 20) -> list[list[np.ndarray]]:
    """Per camera (``demo.yaml`` order), ``samples`` frames spread through its video."""
    vs = load_video_set(demo_dir / "demo.yaml")
    out = []
    for cam in vs.cameras:
        cap = cv2.VideoCapture(vs.source_uri(cam))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in np.linspace(0, n - 1, samples).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, image = cap.read()
            if ok:
                frames.append(image)
        cap.release()
        out.append(frames)
    return out


def colour_stats(images: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per camera, from its sample ``images`` (whole frames, or person crops): the median of the images' BGR channel
    means, (K, 3), and the channel histograms, (K, 3, 256) summed: statistics a running system can keep per camera."""
    means, hists = [], []
    for ims in images:
        means.append(np.median([im.reshape(-1, 3).mean(axis=0) for im in ims], axis=0))
        hists.append([np.bincount(np.concatenate([im[..., c].ravel() for im in ims]), minlength=256) for c in range(3)])
    return np.array(means), np.array(hists, np.float64)


def oracle_luts(names: list[str]) -> np.ndarray:
    """(K, 256, 1, 3) lookup tables that undo ``spoton.demo.generate``'s gains and gamma exactly (noise aside): the
    bound of what colour constancy can give here, not something a deployment knows."""
    from spoton.demo.generate import CAMERAS, LOW_OVERLAP_CAMERAS

    cams = {c.id: c for c in (*CAMERAS, *LOW_OVERLAP_CAMERAS)}
    v = np.arange(256, dtype=np.float64)[:, None] / 255.0
    luts = np.zeros((len(names), 256, 1, 3), np.uint8)
    for k, name in enumerate(names):
        cam = cams[name]
        luts[k, :, 0, :] = np.clip(255.0 * v ** (1.0 / cam.gamma) / np.array(cam.gains_bgr) + 0.5, 0, 255)
    return luts


def colour_luts(means: np.ndarray, hists: np.ndarray, mode: str) -> np.ndarray:
    """(K, 256, 1, 3) uint8 lookup tables (``cv2.LUT``) that map each camera's colours onto a common reference.

    ``gray``: gray world, each channel scaled so the camera's mean equals the cameras' average (gains, no gamma);
    ``hist``: per-channel histogram matching onto the cameras' average histogram (gains and gamma alike)."""
    v = np.arange(256, dtype=np.float64)
    luts = np.zeros((len(means), 256, 1, 3), np.uint8)
    if mode == "gray":
        gains = means.mean(axis=0) / means
        for k in range(len(means)):
            luts[k, :, 0, :] = np.clip(v[:, None] * gains[k][None, :] + 0.5, 0, 255)
        return luts
    cdf = np.cumsum(hists, axis=2) / hists.sum(axis=2, keepdims=True)
    reference = cdf.mean(axis=0)
    for k in range(len(means)):
        for c in range(3):
            luts[k, :, 0, c] = np.clip(np.interp(cdf[k, c], reference[c], v) + 0.5, 0, 255)
    return luts


def normalise_colours(crops: Crops, luts: np.ndarray) -> list[np.ndarray]:
    return [cv2.LUT(np.ascontiguousarray(im), luts[k]) for im, k in zip(crops.images, crops.camera, strict=True)]


def fuse(parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Concatenated L2-normalised embeddings, each scaled by the square root of its weight (so the cosine of the
    result is the weighted mean of the parts' cosines when the weights sum to 1), re-normalised."""
    return l2_normalize(np.concatenate([l2_normalize(e) * np.sqrt(w) for e, w in parts], axis=1))


def timed(fn: Callable[[], np.ndarray], n: int) -> tuple[np.ndarray, float]:
    """``fn()`` and its CPU time (``time.process_time``: all threads of this process) in ms per crop of ``n``."""
    start = time.process_time()
    out = fn()
    return out, (time.process_time() - start) * 1000 / max(n, 1)


def levers(
    crops: Crops, demo_dir: Path, colour_frames: int, threads: int, gap: int, window: int, every: int, min_height: int
) -> dict:
    """Issue #25's cheap levers: name -> scores and CPU ms per crop (every step of the variant, this run).

    Colour modes (suffix ``+mode``): ``gray``/``hist`` from ``colour_frames`` whole frames per camera; ``gray_crops``/
    ``hist_crops`` from the person crops of other frames (shifted by ``every // 2``: none of the scored crops);
    ``oracle``, the generator's own gains and gamma undone."""
    n = len(crops.images)
    start = time.process_time()
    frame_stats = colour_stats(camera_frames(demo_dir, colour_frames))
    stats_ms = (time.process_time() - start) * 1000
    other = gt_crops(demo_dir, every, min_height, offset=every // 2)
    crop_stats = colour_stats(
        [[im for im, c in zip(other.images, other.camera, strict=True) if c == k] for k in range(len(crops.cameras))]
    )
    nets = {name: Embedder(name, threads=threads) for name in ("mobilenetv2", "deepsort")}
    images: dict[str, list[np.ndarray]] = {"": crops.images}
    cost: dict[str, float] = {"": 0.0}  # CPU ms per crop of each step
    modes = {
        "gray": colour_luts(*frame_stats, "gray"),
        "hist": colour_luts(*frame_stats, "hist"),
        "gray_crops": colour_luts(*crop_stats, "gray"),
        "hist_crops": colour_luts(*crop_stats, "hist"),
        "oracle": oracle_luts(crops.cameras),
    }
    for mode, luts in modes.items():
        images[mode], cost[mode] = timed(lambda luts=luts: normalise_colours(crops, luts), n)
    emb: dict[str, np.ndarray] = {}
    for mode, ims in images.items():
        for name, e in nets.items():
            emb[f"{name}{'+' + mode if mode else ''}"], cost[name] = timed(lambda e=e, ims=ims: e.embed(ims), n)
        emb[f"hsv{'+' + mode if mode else ''}"], cost["hsv"] = timed(
            lambda ims=ims: np.stack([colour_histogram(im) for im in ims]), n
        )
    big = Embedder("mobilenetv2", input_wh=(128, 256), threads=threads)
    emb["mobilenetv2_128x256"], cost["mobilenetv2_128x256"] = timed(lambda: big.embed(crops.images), n)
    flipped, cost["flip"] = timed(lambda: big.embed([c[:, ::-1] for c in crops.images]), n)
    emb["mobilenetv2_128x256_flip_tta"] = l2_normalize(emb["mobilenetv2_128x256"] + flipped)
    steps = {k: [k.split("+")[0], *k.split("+")[1:]] for k in emb}
    steps["mobilenetv2_128x256"] = ["mobilenetv2_128x256"]
    steps["mobilenetv2_128x256_flip_tta"] = ["mobilenetv2_128x256", "flip"]
    for mode in images:
        tail = f"+{mode}" if mode else ""
        m, d, h = emb[f"mobilenetv2{tail}"], emb[f"deepsort{tail}"], emb[f"hsv{tail}"]
        for w in (0.3, 0.5, 0.7):
            emb[f"fuse_mnv2_{w:g}_deepsort{tail}"] = fuse([(m, w), (d, 1 - w)])
            steps[f"fuse_mnv2_{w:g}_deepsort{tail}"] = ["mobilenetv2", "deepsort", mode]
        for w in (0.3, 0.5, 0.7):
            for deep, x in (("deepsort", d), ("mnv2", m)):
                emb[f"fuse_hsv_{w:g}_{deep}{tail}"] = fuse([(h, w), (x, 1 - w)])
                steps[f"fuse_hsv_{w:g}_{deep}{tail}"] = ["hsv", {"mnv2": "mobilenetv2"}.get(deep, deep), mode]
            emb[f"fuse_hsv_{w:g}_mnv2_deepsort{tail}"] = fuse([(h, w), (m, (1 - w) / 2), (d, (1 - w) / 2)])
            steps[f"fuse_hsv_{w:g}_mnv2_deepsort{tail}"] = ["hsv", "mobilenetv2", "deepsort", mode]
    out = {
        "_camera_stats": {
            "frames": colour_frames,
            "cpu_ms_per_camera": stats_ms / len(crops.cameras),
            "frame_means_bgr": frame_stats[0].tolist(),
            "crop_means_bgr": crop_stats[0].tolist(),
            "crops_for_stats": len(other.images),
        }
    }
    for name, e in emb.items():
        t_emb, t_crops = tracklets(e, crops, window)
        out[name] = {
            "cross_camera": score(e, crops, 0),
            "cross_camera_gap": score(e, crops, gap),
            "tracklets_cross_camera": score(t_emb, t_crops, 0),
            "steps": [s for s in steps[name] if s],
            "cpu_ms_per_crop": float(sum(cost[s] for s in steps[name])),
        }
    return out


def colour_embedder(spec: str, threads: int) -> Embedder:
    """``NAME`` or ``NAME+colourW``: the network, fused with the colour cue at weight W (``REID_COLOUR_WEIGHT``)."""
    name, _, weight = spec.partition("+colour")
    return Embedder(name, threads=threads, colour_weight=float(weight or 0.0))


def embed_per_camera(e: Embedder, crops: Crops, colour: CameraColour) -> np.ndarray:
    """Each camera's crops embedded with that camera's colour gains (used only by colour-fused embedders)."""
    out = np.zeros((len(crops.images), e.info.embedding_dim), np.float32)
    for k in np.unique(crops.camera):
        idx = np.flatnonzero(crops.camera == k)
        out[idx] = e.embed([crops.images[i] for i in idx], colour.gains(str(k)))
    return out


def runtimes(embedder: Embedder, threads: int, torch_eager: bool = True) -> dict:
    """name -> callable(batch NCHW float32) -> (N, D): reid_svc's CPU runtimes (``REID_BACKEND`` onnx and
    openvino, as the service opens them, ``threads`` inference threads) and eager PyTorch for reference."""
    import torch

    from reid_svc.embedders import network

    out = {}
    for backend in ("onnx", "openvino"):
        try:
            e = Embedder(embedder.model_type, embedder.weights, embedder.input_wh, backend=backend, threads=threads)
        except ImportError:
            continue
        out[e.info.backend] = e._run
    if not torch_eager:
        return out
    model = network(embedder.model_type).build(embedder.weights, embedder.input_wh).eval()

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
    p.add_argument("--levers", action="store_true", help="also score issue #25's levers (``variants``)")
    p.add_argument("--colour-frames", type=int, default=20, help="frames per camera for its colour statistics")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "embedder_eval.json")
    a = p.parse_args()
    if not (a.demo_dir / "demo.yaml").exists():
        generate(a.demo_dir)
    crops = gt_crops(a.demo_dir, a.every, a.min_height)
    embedders = {name: colour_embedder(name, a.threads) for name in a.embedders}
    # Per camera, the colour correction reid applies (spoton.colour), learnt from the crops of other frames.
    other = gt_crops(a.demo_dir, a.every, a.min_height, offset=a.every // 2)
    colour = CameraColour()
    for im, k in zip(other.images, other.camera, strict=True):
        colour.observe(str(k), [im])
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
        emb = embed_per_camera(e, crops, colour)
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
    if a.levers and not a.speed_only:
        results["variants"] = levers(
            crops, a.demo_dir, a.colour_frames, a.threads, gap, round(a.tracklet_s * FPS), a.every, a.min_height
        )
        print(f"{'variant':36s}   AUC  AUC>={a.gap_s:g}s  rank-1  tracklet AUC  CPU ms/crop", flush=True)
        for n, v in results["variants"].items():
            if not n.startswith("_"):
                print(
                    f"{n:36s} {v['cross_camera']['auc']:.3f}  {v['cross_camera_gap']['auc']:.3f}     "
                    f"{v['cross_camera']['rank1']:.3f}   {v['tracklets_cross_camera']['auc']:.3f}        "
                    f"{v['cpu_ms_per_crop']:.2f}",
                    flush=True,
                )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
