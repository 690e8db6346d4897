"""Generate the multi-camera demo video set from vtest.avi: ``python -m spoton.demo.generate``.

Each virtual camera is a perspective warp of an overlapping part of the one real view (its own size, angle and
zoom), with its own colour balance and sensor noise, so the same person appears in several cameras at once and
walks from one into another. Camera k's floor homography is the real calibration composed with the inverse of
its warp; its ground truth is the PETS ground truth warped into it (same person ids in every camera).
Deterministic: same inputs, same bytes of ground truth and the same frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from spoton.demo.data import PETS_FPS, PETS_VIEW1_HOMOGRAPHY, REPO, fit_view_homography, gt_path, load_mot, vtest_path

DEFAULT_OUT = REPO / "build" / "demo"


@dataclass(frozen=True)
class VirtualCamera:
    """A virtual camera: the source-image quad (TL, TR, BR, BL; px) it sees, its output size and its look."""

    id: str
    quad: tuple[tuple[float, float], ...]
    size: tuple[int, int]
    gains_bgr: tuple[float, float, float]
    gamma: float
    noise_sigma: float

    def warp(self) -> np.ndarray:
        w, h = self.size
        dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
        return cv2.getPerspectiveTransform(np.array(self.quad, np.float32), dst)


CAMERAS = (
    # West half, rotated a few degrees.
    VirtualCamera("cam1", ((-10, 130), (450, 100), (480, 560), (10, 590)), (640, 480), (1.05, 1.0, 0.92), 0.95, 3.0),
    # East half seen at an angle (trapezoid: top narrower than the bottom).
    VirtualCamera("cam2", ((360, 100), (760, 110), (790, 520), (300, 500)), (608, 448), (0.9, 1.0, 1.1), 1.08, 4.0),
    # Zoom on the centre where the paths cross.
    VirtualCamera("cam3", ((250, 120), (610, 130), (600, 390), (240, 380)), (544, 384), (1.0, 0.94, 1.04), 1.0, 2.5),
    # The near half, wide and slightly tilted.
    VirtualCamera("cam4", ((0, 250), (768, 220), (768, 576), (0, 576)), (704, 352), (0.96, 1.06, 1.0), 0.9, 3.5),
)

# A second layout with little overlap: west and east strips and a band across the north, leaving the south centre
# unseen, so people walk out of one camera and into another seconds later (handovers by appearance and
# space-time alone, no simultaneous floor agreement).
LOW_OVERLAP_CAMERAS = (
    VirtualCamera("west", ((0, 110), (230, 105), (235, 576), (0, 576)), (256, 544), (1.04, 1.0, 0.93), 0.95, 3.0),
    VirtualCamera("north", ((230, 95), (540, 100), (545, 260), (225, 255)), (512, 272), (0.92, 1.0, 1.08), 1.06, 3.5),
    VirtualCamera("east", ((540, 105), (768, 110), (768, 576), (535, 576)), (256, 544), (0.97, 1.05, 1.0), 0.92, 2.5),
)
LAYOUTS = {"demo": CAMERAS, "low_overlap": LOW_OVERLAP_CAMERAS}
LOW_OVERLAP_OUT = REPO / "build" / "demo-low-overlap"

ZONES = [
    {"id": "crossing", "polygon": [[-8.0, -8.0], [-2.0, -8.0], [-2.0, -2.0], [-8.0, -2.0]]},
    {"id": "north_path", "polygon": [[-4.0, 0.0], [4.0, 0.0], [4.0, 6.0], [-4.0, 6.0]]},
]
LINES = [{"id": "path", "a": [-10.0, -14.0], "b": [-10.0, 4.0]}]
FLOOR = {"width_m": 30.0, "height_m": 26.0, "origin_m": [-21.0, -17.0]}


def camera_homography(view_h: np.ndarray, cam: VirtualCamera) -> np.ndarray:
    """Camera px -> floor m: undo the warp, then the real view's calibration."""
    h = view_h @ np.linalg.inv(cam.warp())
    return h / h[2, 2]


def render_camera(image: np.ndarray, cam: VirtualCamera, frame_index: int, seed: int, index: int = -1) -> np.ndarray:
    out = cv2.warpPerspective(image, cam.warp(), cam.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = out.astype(np.float32) * np.array(cam.gains_bgr, np.float32)
    out = 255.0 * np.power(np.clip(out / 255.0, 0, 1), cam.gamma)
    rng = np.random.default_rng([seed, frame_index, CAMERAS.index(cam) if index < 0 else index])
    out += rng.normal(0.0, cam.noise_sigma, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def warp_ground_truth(gt: np.ndarray, cam: VirtualCamera, min_visible: float = 0.5) -> np.ndarray:
    """PETS rows -> this camera's rows (same ids, same floor x/y); boxes are the warped corners' hull, clipped.

    A box is kept when at least ``min_visible`` of its warped area lies inside the image.
    """
    m = cam.warp()
    w, h = cam.size
    x1, y1 = gt[:, 2], gt[:, 3]
    x2, y2 = x1 + gt[:, 4], y1 + gt[:, 5]
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1)
    warped = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), m).reshape(-1, 4, 2)
    lo, hi = warped.min(axis=1), warped.max(axis=1)
    area = np.prod(hi - lo, axis=1)
    clo = np.clip(lo, 0, [w, h])
    chi = np.clip(hi, 0, [w, h])
    visible = np.prod(np.maximum(chi - clo, 0), axis=1) / np.maximum(area, 1e-9)
    keep = visible >= min_visible
    out = gt[keep].copy()
    out[:, 2:4] = clo[keep]
    out[:, 4:6] = (chi - clo)[keep]
    return out


def write_mot(path: Path, rows: np.ndarray) -> None:
    with open(path, "w") as fh:
        for r in rows:
            fh.write(
                f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{int(r[6])},"
                f"{r[7]:.4f},{r[8]:.4f},{r[9]:.1f}\n"
            )


def foot_floor_error(rows: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Floor error (m) of the foot-point rule on ground-truth boxes of one camera."""
    if not len(rows):
        return np.zeros(0)
    foot = np.stack([rows[:, 2] + rows[:, 4] / 2, rows[:, 3] + rows[:, 5]], axis=1)
    proj = cv2.perspectiveTransform(foot.reshape(-1, 1, 2), h).reshape(-1, 2)
    return np.linalg.norm(proj - rows[:, 7:9], axis=1)


def generate(
    out_dir: Path,
    frames: int = 0,
    seed: int = 2009,
    refit: bool = False,
    write_videos: bool = True,
    layout: str = "demo",
) -> dict:
    """Write videos, ground truth and ``demo.yaml`` into ``out_dir``; returns a report (counts, errors)."""
    cameras = LAYOUTS[layout]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gt").mkdir(exist_ok=True)
    gt_file = gt_path()
    gt = load_mot(gt_file) if gt_file else None
    view_h = PETS_VIEW1_HOMOGRAPHY
    if refit and gt is not None:
        view_h, _ = fit_view_homography(gt)
    src = cv2.VideoCapture(str(vtest_path()))
    total = int(src.get(cv2.CAP_PROP_FRAME_COUNT))
    n = min(frames, total) if frames else total
    report: dict = {"frames": n, "fps": PETS_FPS, "layout": layout, "cameras": {}, "ground_truth": gt is not None}
    writers = {}
    if write_videos:
        for cam in cameras:
            writers[cam.id] = cv2.VideoWriter(
                str(out_dir / f"{cam.id}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), PETS_FPS, cam.size
            )
            if not writers[cam.id].isOpened():
                raise RuntimeError(f"OpenCV cannot write {out_dir / cam.id}.mp4 (mp4v)")
        for index in range(1, n + 1):
            ok, image = src.read()
            if not ok:
                break
            for k, cam in enumerate(cameras):
                writers[cam.id].write(render_camera(image, cam, index, seed, k))
        for w in writers.values():
            w.release()
    src.release()
    cameras_yaml = []
    for cam in cameras:
        h = camera_homography(view_h, cam)
        cameras_yaml.append(
            {
                "id": cam.id,
                "source": f"{cam.id}.mp4",
                "fps": PETS_FPS,
                "homography": [[float(f"{v:.10g}") for v in row] for row in h],
            }
        )
        entry: dict = {"size": list(cam.size)}
        if gt is not None:
            rows = warp_ground_truth(gt[gt[:, 0] <= n], cam)
            write_mot(out_dir / "gt" / f"{cam.id}.txt", rows)
            err = foot_floor_error(rows[rows[:, 6] == 1], h)
            entry |= {
                "boxes": len(rows),
                "people": len(np.unique(rows[:, 1])),
                "calibration_median_m": float(np.median(err)) if len(err) else None,
                "calibration_p90_m": float(np.percentile(err, 90)) if len(err) else None,
            }
        report["cameras"][cam.id] = entry
    name = "demo" if layout == "demo" else f"demo-{layout.replace('_', '-')}"
    doc = {"name": name, "floor": FLOOR, "cameras": cameras_yaml, "zones": ZONES, "lines": LINES}
    with open(out_dir / "demo.yaml", "w") as fh:
        fh.write("# Generated by `python -m spoton.demo.generate` from vtest.avi (PETS09-S2L1 view 1).\n")
        fh.write("# The cameras are perspective warps of ONE real viewpoint, not a real multi-camera site.\n")
        yaml.safe_dump(doc, fh, sort_keys=False)
    with open(out_dir / "report.json", "w") as fh:
        json.dump(report, fh, indent=2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="demo")
    parser.add_argument("--out", type=Path, default=None, help="default build/demo (build/demo-low-overlap)")
    parser.add_argument("--frames", type=int, default=0, help="only the first N frames (0 = all 795)")
    parser.add_argument("--seed", type=int, default=2009)
    parser.add_argument("--refit", action="store_true", help="refit the view calibration from the ground truth")
    args = parser.parse_args()
    out = args.out or (DEFAULT_OUT if args.layout == "demo" else LOW_OVERLAP_OUT)
    report = generate(out, args.frames, args.seed, args.refit, layout=args.layout)
    if not report["ground_truth"]:
        print("ground truth not found under SPOTON_DATA_DIR: videos written, no ground truth", file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
