"""Camera sources through OpenCV's FFmpeg backend: files (seek, loop) and live streams (RTSP, HTTP MJPEG, ...).

A live source is read by its own thread that always holds the newest frame: when the pipeline is behind, older
frames are overwritten and counted as dropped rather than queued (latency stays bounded), and when the stream
breaks the thread reconnects with exponential backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from spoton.bootstrap.logs import log_event

log = logging.getLogger("gateway.sources")

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def is_live(uri: str) -> bool:
    return uri.lower().startswith(LIVE_SCHEMES)


@dataclass
class SourceFrame:
    """One decoded frame: ``frame_index`` is the 1-based position in the file (or the count of frames received
    from a live stream), ``media_index`` the 1-based frame count on the media clock (loops included),
    ``image`` BGR uint8 (H, W, 3), ``captured_ns`` wall-clock time of a live frame (0 for files)."""

    frame_index: int
    image: np.ndarray
    media_index: int = 0
    captured_ns: int = 0


class VideoSource:
    """A video file read every ``stride``-th frame; ``seek`` jumps, ``loop`` restarts it at its end."""

    live = False

    def __init__(self, uri: str, stride: int = 1, loop: bool = False) -> None:
        self.uri = uri
        self.stride = max(1, int(stride))
        self.loop = loop
        self.cap = cv2.VideoCapture(uri)
        if not self.cap.isOpened():
            raise ValueError(f"cannot open video source {uri!r}")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.loops = 0
        self._next_index = 1

    @property
    def state(self) -> str:
        return "file"

    def read(self) -> SourceFrame | None:
        """The next sampled frame, or None at the end of the source (or on a broken file)."""
        for attempt in range(2):
            frame = self._read_once()
            if frame is not None:
                return frame
            if not (self.loop and attempt == 0 and self._next_index > 1):
                return None
            self.loops += 1
            self.seek(1)
        return None

    def _read_once(self) -> SourceFrame | None:
        for _ in range(self.stride - 1):
            if not self.cap.grab():
                return None
            self._next_index += 1
        ok, image = self.cap.read()
        if not ok or image is None:
            return None
        frame = SourceFrame(self._next_index, image, self.loops * self.frame_count + self._next_index)
        self._next_index += 1
        return frame

    def seek(self, frame_index: int) -> None:
        """Continue from this 1-based frame; ValueError beyond the end."""
        if frame_index < 1 or (self.frame_count and frame_index > self.frame_count):
            raise ValueError(f"frame {frame_index} is outside 1..{self.frame_count}")
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index - 1)
        self._next_index = frame_index

    def close(self) -> None:
        self.cap.release()


class LiveSource:
    """A live stream read by a background thread that keeps only the newest frame.

    ``take()`` returns the newest frame not handed out yet (None when there is none); frames that were replaced
    before anyone took them are counted in ``dropped``. The thread reconnects with backoff (0.5 s doubling to
    ``max_backoff_s``) whenever the stream ends or fails; ``state`` says ``connecting``, ``live`` or
    ``reconnecting``.
    """

    live = True
    frame_count = 0

    def __init__(self, uri: str, max_backoff_s: float = 10.0, open_timeout_s: float = 10.0) -> None:
        self.uri = uri
        self.max_backoff_s = max_backoff_s
        self.fps = 0.0
        self.state = "connecting"
        self.dropped = 0
        self.received = 0
        self.reconnects = 0
        self.last_error = ""
        self._latest: SourceFrame | None = None
        self._taken = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._opened = threading.Event()
        timeout_ms = int(open_timeout_s * 1000)
        self._timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        self._thread = threading.Thread(target=self._run, name=f"source-{uri}", daemon=True)
        self._thread.start()
        self._opened.wait(open_timeout_s)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, self._timeouts)
            if cap.isOpened():
                self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or self.fps
                self.state = "live"
                self._opened.set()
                backoff = 0.5
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        self.last_error = "stream ended or failed"
                        break
                    self.received += 1
                    with self._lock:
                        if not self._taken:
                            self.dropped += 1
                        self._latest = SourceFrame(self.received, image, self.received, time.time_ns())
                        self._taken = False
            else:
                self.last_error = "cannot open"
            cap.release()
            self._opened.set()
            if self._stop.is_set():
                break
            self.state = "reconnecting"
            self.reconnects += 1
            log_event(log, "source reconnecting", level=logging.WARNING, uri=self.uri, backoff_s=backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def take(self) -> SourceFrame | None:
        with self._lock:
            if self._taken or self._latest is None:
                return None
            self._taken = True
            return self._latest

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def open_source(uri: str, stride: int = 1, loop: bool = False) -> VideoSource | LiveSource:
    return LiveSource(uri) if is_live(uri) else VideoSource(uri, stride, loop)


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
