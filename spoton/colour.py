"""Per-camera colour constancy for appearance: each camera's colour cast estimated from the people it sees.

Cameras differ in white balance and gain, so the same person's clothes differ in colour from camera to camera,
and a colour cue (``reid_svc.embedders.colour_histogram``) compares badly across cameras. Gray world over whole
frames fails here: each camera sees a different part of the scene, so whole-frame means differ by up to 2x while
the cameras' real gains differ by about 10 % (bench/embedder_eval.py ``--levers``). Over *person crops* the scene
is averaged out by the many people a camera sees, so the median crop colour, mapped to neutral grey, estimates the
camera's cast: on the demo cameras within a few thousandths of AUC of undoing the generator's own gains.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

# Crops whose colour a camera's estimate keeps (the most recent), and how many it needs before it is used.
WINDOW = 512
MIN_CROPS = 32


class CameraColour:
    """Running per-camera BGR gains: the median of the last ``window`` person crops' channel means, mapped to grey.

    ``observe`` feeds a camera's crops (any people, not only those embedded); ``gains`` is None until the camera has
    ``min_crops`` of them (then embeddings are computed uncorrected)."""

    def __init__(self, window: int = WINDOW, min_crops: int = MIN_CROPS) -> None:
        self.window = window
        self.min_crops = min_crops
        self._means: dict[str, deque[np.ndarray]] = {}

    def observe(self, camera_id: str, crops: list[np.ndarray]) -> None:
        """Feed a camera's BGR person crops; each one's centre half counts (the person more than the background)."""
        means = self._means.setdefault(camera_id, deque(maxlen=self.window))
        for crop in crops:
            h, w = crop.shape[:2]
            centre = crop[h // 4 : max(h - h // 4, h // 4 + 1), w // 4 : max(w - w // 4, w // 4 + 1)]
            if centre.size:
                means.append(centre.reshape(-1, 3).mean(axis=0))

    def gains(self, camera_id: str) -> np.ndarray | None:
        """(3,) BGR multipliers that map the camera's median person colour to grey, or None while it has too few."""
        means = self._means.get(camera_id)
        if means is None or len(means) < self.min_crops:
            return None
        median = np.median(np.stack(means), axis=0)
        return (median.mean() / np.maximum(median, 1.0)).astype(np.float32)


def apply_gains(crops: list[np.ndarray], gains: np.ndarray | None) -> list[np.ndarray]:
    """BGR uint8 crops with their channels scaled by ``gains`` (3,), clipped (one lookup table for all); the crops
    themselves when None."""
    if gains is None:
        return crops
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * np.asarray(gains, np.float32)[None, :] + 0.5, 0, 255)
    lut = lut.astype(np.uint8).reshape(256, 1, 3)
    return [cv2.LUT(np.ascontiguousarray(c), lut) for c in crops]
