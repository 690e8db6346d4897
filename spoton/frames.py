"""Frame encoding and decoding (the one copy every service uses)."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from spoton.v1 import common_pb2

MAX_FRAME_PIXELS = 8192 * 8192
# A person crop's JPEG (thumbnails, person-search queries), in bytes.
MAX_CROP_BYTES = 512 * 1024


def encode_frame(
    image: np.ndarray,
    camera_id: str,
    frame_index: int,
    timestamp_ns: int,
    encoding: int = common_pb2.FRAME_ENCODING_JPEG,
    jpeg_quality: int = 90,
) -> common_pb2.Frame:
    """BGR uint8 (H, W, 3) image -> Frame message."""
    h, w = image.shape[:2]
    if encoding == common_pb2.FRAME_ENCODING_RAW_BGR8:
        data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    elif encoding == common_pb2.FRAME_ENCODING_PNG:
        data = cv2.imencode(".png", image)[1].tobytes()
    else:
        encoding = common_pb2.FRAME_ENCODING_JPEG
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])[1].tobytes()
    return common_pb2.Frame(
        camera_id=camera_id,
        frame_index=frame_index,
        timestamp_ns=timestamp_ns,
        encoding=encoding,
        width=w,
        height=h,
        data=data,
    )


def decode_frame(frame: common_pb2.Frame, max_pixels: int = MAX_FRAME_PIXELS) -> np.ndarray:
    """Frame message -> BGR uint8 (H, W, 3); ValueError for empty, corrupt, oversized or inconsistent frames."""
    if not frame.data:
        raise ValueError(f"frame {frame.camera_id}#{frame.frame_index} has no data")
    if frame.encoding == common_pb2.FRAME_ENCODING_RAW_BGR8:
        w, h = frame.width, frame.height
        if w <= 0 or h <= 0 or w * h > max_pixels:
            raise ValueError(f"raw frame needs a width and height within {max_pixels} pixels, got {w}x{h}")
        if len(frame.data) != w * h * 3:
            raise ValueError(f"raw BGR8 frame {w}x{h} needs {w * h * 3} bytes, got {len(frame.data)}")
        return np.frombuffer(frame.data, np.uint8).reshape(h, w, 3)
    if frame.encoding not in (common_pb2.FRAME_ENCODING_JPEG, common_pb2.FRAME_ENCODING_PNG):
        raise ValueError(f"unsupported frame encoding {frame.encoding}")
    w, h = _header_size(frame.data)
    if w * h > max_pixels:
        raise ValueError(f"frame {w}x{h} is larger than the {max_pixels}-pixel limit")
    image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"frame {frame.camera_id}#{frame.frame_index} could not be decoded (corrupt image)")
    return image


def _header_size(data: bytes) -> tuple[int, int]:
    """Width and height from the image header alone (Pillow reads no pixels), so huge frames are refused cheaply."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as img:
            return img.size
    except Image.DecompressionBombError as exc:
        raise ValueError(f"frame is larger than the decoder accepts: {exc}") from exc
    except (OSError, ValueError, ImportError) as exc:
        raise ValueError(f"corrupt image: {exc}") from exc


def covered_shares(xyxy: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """Per box of (N, 4) pixel boxes, the largest share (0..1) of its area that one other box covers: the other
    boxes of ``xyxy`` and every box of ``others`` (M, 4). 0 = nobody in front of or behind it."""
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    extra = np.zeros((0, 4)) if others is None else np.asarray(others, np.float64).reshape(-1, 4)
    every = np.concatenate([boxes, extra])
    iw = np.clip(
        np.minimum(boxes[:, None, 2], every[None, :, 2]) - np.maximum(boxes[:, None, 0], every[None, :, 0]), 0, None
    )
    ih = np.clip(
        np.minimum(boxes[:, None, 3], every[None, :, 3]) - np.maximum(boxes[:, None, 1], every[None, :, 1]), 0, None
    )
    inter = iw * ih
    inter[np.arange(len(boxes)), np.arange(len(boxes))] = 0.0  # a box does not cover itself
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    return np.clip(inter.max(axis=1, initial=0.0) / area, 0.0, 1.0)


def sharpness(crop: np.ndarray, height: int = 128) -> float:
    """Variance of the Laplacian of a BGR or grey crop scaled to ``height`` px (so a crop's size does not count):
    high for a crisp person, low for a blurred or washed-out one."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h, w = grey.shape[:2]
    if h == 0 or w == 0:
        return 0.0
    norm = cv2.resize(grey, (max(1, round(w * height / h)), height))
    return float(cv2.Laplacian(norm, cv2.CV_64F).var())


def person_crop(image: np.ndarray, xyxy: np.ndarray, index: int, quality: int = 85) -> tuple[bytes, float] | None:
    """JPEG of box ``index`` of (N, 4) pixel boxes in a BGR image, and the share of it no other box covers
    (0..1); None when the clipped box is too small to show anyone (< 8 x 16 px)."""
    h, w = image.shape[:2]
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes[index]
    a, b = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.floor(y1), 0, h))
    c, d = int(np.clip(np.ceil(x2), 0, w)), int(np.clip(np.ceil(y2), 0, h))
    if c - a < 8 or d - b < 16:
        return None
    covered = float(covered_shares(boxes)[index])
    ok, jpeg = cv2.imencode(".jpg", image[b:d, a:c], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return (jpeg.tobytes(), float(np.clip(1.0 - covered, 0.0, 1.0))) if ok else None
