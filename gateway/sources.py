"""Camera sources: files (and, through OpenCV's FFmpeg backend, RTSP and HTTP MJPEG URLs)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SourceFrame:
    """One decoded frame; ``frame_index`` is 1-based in source frames, ``image`` BGR uint8 (H, W, 3)."""

    frame_index: int
    image: np.ndarray


class VideoSource:
    """Reads every ``stride``-th frame of a video through OpenCV."""

    def __init__(self, uri: str, stride: int = 1) -> None:
        self.uri = uri
        self.stride = max(1, int(stride))
        self.cap = cv2.VideoCapture(uri)
        if not self.cap.isOpened():
            raise ValueError(f"cannot open video source {uri!r}")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._next_index = 1

    def read(self) -> SourceFrame | None:
        """The next sampled frame, or None at the end of the source (or on a broken file)."""
        for _ in range(self.stride - 1):
            if not self.cap.grab():
                return None
            self._next_index += 1
        ok, image = self.cap.read()
        if not ok or image is None:
            return None
        frame = SourceFrame(self._next_index, image)
        self._next_index += 1
        return frame

    def close(self) -> None:
        self.cap.release()


def read_frame(uri: str, frame_index: int = 1) -> np.ndarray:
    """One BGR frame (1-based index for files; the next frame for live sources); ValueError if unreadable."""
    cap = cv2.VideoCapture(uri)
    try:
        if not cap.isOpened():
            raise ValueError(f"cannot open video source {uri!r}")
        if frame_index > 1:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index - 1)
        ok, image = cap.read()
        if not ok or image is None:
            raise ValueError(f"source {uri!r} has no frame {frame_index}")
        return image
    finally:
        cap.release()
