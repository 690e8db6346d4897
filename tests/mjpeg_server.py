"""A small HTTP MJPEG camera for tests: serves frames of a video file as multipart JPEG, like an IP camera."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2


class MjpegCamera:
    """``http://{host}:{port}/cam.mjpeg`` at ``fps``, looping ``video``; ``stop()`` and ``start()`` again on the
    same port to simulate a camera that vanishes and comes back. ``requests`` holds each request's Host header."""

    def __init__(self, video: Path, port: int, fps: float = 20.0, frames: int = 60, host: str = "127.0.0.1") -> None:
        cap = cv2.VideoCapture(str(video))
        self.jpegs = []
        while len(self.jpegs) < frames:
            ok, image = cap.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
        cap.release()
        self.host, self.port, self.period = host, port, 1.0 / fps
        self.served = 0
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/cam.mjpeg"

    def start(self) -> None:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                camera.requests.append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while camera._server is not None and self.server is camera._server:
                        jpeg = camera.jpegs[i % len(camera.jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode()
                            + b"\r\n\r\n"
                            + jpeg
                            + b"\r\n"
                        )
                        camera.served += 1
                        i += 1
                        time.sleep(camera.period)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
