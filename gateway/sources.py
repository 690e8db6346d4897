"""Camera sources through OpenCV's FFmpeg backend: files (seek, loop) and live streams (RTSP, HTTP MJPEG, ...).

A live source is read by its own thread that always holds the newest frame: when the pipeline is behind, older
frames are overwritten and counted as dropped rather than queued (latency stays bounded), and when the stream
breaks the thread reconnects with exponential backoff.

Every live connection is checked first (``spoton.sourceurl``): the host is resolved once, refused when internal
unless ``SOURCE_ALLOW_CIDRS`` allows it, and the connection goes to that checked address. HTTP(S) is fetched by
this module (``http.client``: the checked address, the original Host header and TLS server name, certificate
verified, redirects refused, socket timeouts) and the body handed to FFmpeg as a stream, because the FFmpeg bundled
with OpenCV (libavformat 59) follows HTTP redirects with no option to stop it. Other schemes (RTSP, ...) get the URL
with its host replaced by the checked address. Every capture has open and read timeouts.
"""

from __future__ import annotations

import functools
import http.client
import io
import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from spoton.bootstrap.logs import log_event
from spoton.sourceurl import (
    CheckedUrl,
    IPNetwork,
    SourceRefused,
    basic_auth_header,
    check_url,
    redact_text,
    redact_url,
)

log = logging.getLogger("gateway.sources")

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


# RTSP media over the RTSP connection itself: with UDP a server could name another host as the packets' source.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


def is_live(uri: str) -> bool:
    return uri.lower().startswith(LIVE_SCHEMES)


@dataclass(frozen=True)
class SourcePolicy:
    """Which addresses live sources may reach besides public ones, and the open/read timeout (seconds)."""

    allow: tuple[IPNetwork, ...] = ()
    timeout_s: float = 10.0


@functools.cache
def default_policy() -> SourcePolicy:
    """The gateway's settings (``SOURCE_ALLOW_CIDRS``, ``SOURCE_TIMEOUT_S``), read once."""
    from gateway.config import GatewaySettings

    settings = GatewaySettings()
    return SourcePolicy(settings.source_allow_networks, settings.source_timeout_s)


def _timeouts(timeout_s: float) -> list[int]:
    ms = max(1, int(timeout_s * 1000))
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the URL's host as TLS server name (SNI) and certificate name."""

    def __init__(self, address: str, port: int, server_name: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self.server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)


class _HttpStream(io.BufferedIOBase):
    """An HTTP response body as the unseekable stream OpenCV's FFmpeg backend reads (EOF on any error)."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self.conn, self.response, self.pos = conn, response, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self.response.read1(size if size and size > 0 else 65536)
        except (OSError, http.client.HTTPException, ValueError):
            return b""
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.pos if (offset, whence) == (0, io.SEEK_CUR) else -1

    def close(self) -> None:
        self.conn.close()
        super().close()


def _open_http(checked: CheckedUrl, timeout_s: float) -> tuple[cv2.VideoCapture, _HttpStream]:
    """GET ``checked`` from its checked address (no redirects); the capture reading its body, and the stream."""
    from urllib.parse import urlsplit

    parts = urlsplit(checked.url)
    default_port = 443 if checked.scheme == "https" else 80
    port = checked.port or default_port
    if checked.scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(checked.address, port, checked.host, timeout_s)
    else:
        conn = http.client.HTTPConnection(checked.address, port, timeout=timeout_s)
    host = f"[{checked.host}]" if ":" in checked.host else checked.host
    headers = {"Host": host if port == default_port else f"{host}:{port}", "User-Agent": "spoton"}
    if checked.credentials is not None:
        headers["Authorization"] = basic_auth_header(*checked.credentials)
    path = parts.path or "/"
    try:
        conn.request("GET", path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        response = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ValueError(f"cannot open {redact_url(checked.url)!r}: {redact_text(str(exc))}") from None
    if response.status != 200:
        conn.close()
        if 300 <= response.status < 400:
            raise SourceRefused(
                f"source {redact_url(checked.url)!r} answered a redirect ({response.status}); redirects are not "
                "followed: use the final URL"
            )
        raise ValueError(f"source {redact_url(checked.url)!r} answered HTTP {response.status} {response.reason}")
    stream = _HttpStream(conn, response)
    return cv2.VideoCapture(stream, cv2.CAP_FFMPEG, _timeouts(timeout_s)), stream


class LiveCapture:
    """One connection to a checked live source: ``read()`` like ``cv2.VideoCapture``; ``release()`` closes it."""

    def __init__(self, uri: str, policy: SourcePolicy) -> None:
        checked = check_url(uri, policy.allow)
        self._stream: _HttpStream | None = None
        if checked.scheme in ("http", "https"):
            self.cap, self._stream = _open_http(checked, policy.timeout_s)
        else:
            self.cap = cv2.VideoCapture(checked.pinned, cv2.CAP_FFMPEG, _timeouts(policy.timeout_s))
        if not self.cap.isOpened():
            self.release()
            raise ValueError(f"cannot open video source {redact_url(uri)!r}")

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.cap.read()

    def get(self, prop: int) -> float:
        return self.cap.get(prop)

    def release(self) -> None:
        self.cap.release()
        if self._stream is not None:
            self._stream.close()


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
    """A video file read every ``stride``-th frame; ``seek`` jumps, ``loop`` restarts it at its end.

    Thread-safe: the pipeline reads in a worker thread (``asyncio.to_thread``), and a stopped session closes its
    sources while that read may still be running; FFmpeg aborts the whole process when a capture is released during
    a decode (``Assertion fctx->async_lock failed at libavcodec/pthread_frame.c``), so read, seek and close hold one
    lock, and a closed source reads nothing."""

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
        self._lock = threading.Lock()
        self._closed = False

    @property
    def state(self) -> str:
        return "file"

    def read(self) -> SourceFrame | None:
        """The next sampled frame, or None at the end of the source (or on a broken file, or once closed)."""
        with self._lock:
            return None if self._closed else self._read()

    def _read(self) -> SourceFrame | None:
        for attempt in range(2):
            frame = self._read_once()
            if frame is not None:
                return frame
            if not (self.loop and attempt == 0 and self._next_index > 1):
                return None
            self.loops += 1
            self._seek(1)
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
        with self._lock:
            if not self._closed:
                self._seek(frame_index)

    def _seek(self, frame_index: int) -> None:
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index - 1)
        self._next_index = frame_index

    def close(self) -> None:
        """Release the capture, after any read in progress."""
        with self._lock:
            self._closed = True
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

    def __init__(self, uri: str, max_backoff_s: float = 10.0, policy: SourcePolicy | None = None) -> None:
        self.uri = uri
        self.policy = policy or default_policy()
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
        self._thread = threading.Thread(target=self._run, name=f"source-{redact_url(uri)}", daemon=True)
        self._thread.start()
        self._opened.wait(self.policy.timeout_s)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                cap: LiveCapture | None = LiveCapture(self.uri, self.policy)
            except ValueError as exc:  # refused, unresolvable, unreachable
                cap, self.last_error = None, str(exc)
            if cap is not None:
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
                cap.release()
            self._opened.set()
            if self._stop.is_set():
                break
            self.state = "reconnecting"
            self.reconnects += 1
            log_event(
                log,
                "source reconnecting",
                level=logging.WARNING,
                uri=redact_url(self.uri),
                error=self.last_error,
                backoff_s=backoff,
            )
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


def read_frame(uri: str, frame_index: int = 1, policy: SourcePolicy | None = None) -> np.ndarray:
    """One BGR frame (1-based index for files; the next frame for live sources, checked and with timeouts like
    ``LiveSource``); ValueError if refused or unreadable."""
    policy = policy or default_policy()
    if is_live(uri):
        live = LiveCapture(uri, policy)
        try:
            ok, image = live.read()
        finally:
            live.release()
        if not ok or image is None:
            raise ValueError(f"source {redact_url(uri)!r} sent no frame within {policy.timeout_s:g} s")
        return image
    cap = cv2.VideoCapture(uri, cv2.CAP_ANY, _timeouts(policy.timeout_s))
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
