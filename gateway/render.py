"""Drawing for the gateway's pictures: annotated camera frames (MJPEG) and the heatmap PNG."""

from __future__ import annotations

import cv2
import numpy as np

from spoton.frames import decode_frame
from spoton.v1 import common_pb2


def annotate_jpeg(frame: common_pb2.Frame, tracks: list[dict], privacy: bool = False, boxes: bool = True) -> bytes:
    """The frame as JPEG with each track's box and global id drawn (colour by id; ``boxes=False`` leaves them out);
    ``privacy`` blurs every person's box first, so the stream shows where people are but not who."""
    image = decode_frame(frame)
    if not image.flags.writeable:  # RAW frames decode to a view of the message's bytes
        image = image.copy()
    h, w = image.shape[:2]
    for t in tracks:
        gid = t["global_id"] or 0
        hue = (gid * 47) % 180
        colour = tuple(int(c) for c in cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0])
        x1, y1, x2, y2 = (round(v) for v in t["bbox"])
        if privacy:
            a, b, c, d = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if c > a and d > b:
                k = max(3, ((c - a) // 3) | 1)
                image[b:d, a:c] = cv2.GaussianBlur(image[b:d, a:c], (k, k), 0)
        if not boxes:
            continue
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(image, str(gid), (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2, cv2.LINE_AA)
    return encode_jpeg(image)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """A BGR (H, W, 3) uint8 image as JPEG bytes."""
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def blur_jpeg(jpeg: bytes) -> bytes:
    """A person crop blurred beyond recognition (Gaussian, kernel a third of its shorter side), as JPEG."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # never the original bytes: an undecodable crop becomes a blank one
        image = np.zeros((8, 8, 3), np.uint8)
    k = max(3, (min(image.shape[:2]) // 3) | 1)
    return cv2.imencode(".jpg", cv2.GaussianBlur(image, (k, k), 0), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def render_heatmap(h: dict, px_per_m: float) -> bytes:
    """Presence-seconds grid -> a colour PNG of the floor, north up (log scale, inferno)."""
    grid = np.array(h["seconds"], float).reshape(int(h["rows"]), int(h["cols"]))
    scaled = np.log1p(grid)
    scaled = (255 * scaled / scaled.max()).astype(np.uint8) if scaled.max() > 0 else scaled.astype(np.uint8)
    image = cv2.applyColorMap(np.flipud(scaled), cv2.COLORMAP_INFERNO)
    size = (
        max(1, round(grid.shape[1] * h["cell_m"] * px_per_m)),
        max(1, round(grid.shape[0] * h["cell_m"] * px_per_m)),
    )
    return cv2.imencode(".png", cv2.resize(image, size, interpolation=cv2.INTER_NEAREST))[1].tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """A BGR (H, W, 3) uint8 image as PNG bytes."""
    return cv2.imencode(".png", image)[1].tobytes()
