"""Where the real data lives (``SPOTON_DATA_DIR``) and the fitted calibration of the PETS09-S2L1 view."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEBIAN_VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")

# Image px (box bottom centre) -> PETS ground-plane metres, fitted with RANSAC from the 4,476 counted
# ground-truth boxes of PETS09-S2L1 (median error 2.5 cm, p90 5.1 cm). Committed so the demo works without the
# ground-truth file; `python -m spoton.demo.generate --refit` recomputes it.
PETS_VIEW1_HOMOGRAPHY = np.array(
    [
        [5.21759626e-02, -5.90224440e-01, 8.64584137e01],
        [-1.36485368e-01, -3.90549799e-01, 1.17694025e02],
        [9.13648281e-04, 1.91171104e-02, 1.00000000e00],
    ]
)
PETS_FPS = 7.0


def data_dir() -> Path:
    return Path(os.environ.get("SPOTON_DATA_DIR") or (REPO.parent / "shared" / "data"))


def vtest_path() -> Path:
    """The demo video: ``$SPOTON_DATA_DIR/vtest.avi``, else Debian's opencv-doc copy."""
    for path in (data_dir() / "vtest.avi", DEBIAN_VTEST):
        if path.exists():
            return path
    raise FileNotFoundError(
        f"vtest.avi not found in {data_dir()} (SPOTON_DATA_DIR) nor at {DEBIAN_VTEST}; install it with "
        "`apt-get download opencv-doc && dpkg -x opencv-doc_*.deb /` or set SPOTON_DATA_DIR"
    )


def gt_path() -> Path | None:
    path = data_dir() / "PETS09-S2L1-gt.txt"
    return path if path.exists() else None


def public_detections_path() -> Path | None:
    path = data_dir() / "PETS09-S2L1-det-sort-frcnn.txt"
    return path if path.exists() else None


def load_mot(path: Path) -> np.ndarray:
    """MOTChallenge text -> float64 (N, 10) rows ``frame, id, left, top, width, height, conf, x, y, z``."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    if rows.shape[1] < 10:
        rows = np.concatenate([rows, np.full((len(rows), 10 - rows.shape[1]), -1.0)], axis=1)
    return rows[:, :10]


def fit_view_homography(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit image foot points -> floor metres from counted GT rows; returns (H, per-row error m)."""
    import cv2

    g = gt[gt[:, 6] == 1]
    foot = np.stack([g[:, 2] + g[:, 4] / 2, g[:, 3] + g[:, 5]], axis=1)
    h, _ = cv2.findHomography(foot, g[:, 7:9], cv2.RANSAC, 0.5)
    proj = cv2.perspectiveTransform(foot.reshape(-1, 1, 2), h).reshape(-1, 2)
    return h / h[2, 2], np.linalg.norm(proj - g[:, 7:9], axis=1)
