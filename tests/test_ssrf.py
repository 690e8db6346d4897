"""Sources cannot be turned against the network they run in (SSRF), and camera credentials never show.

Internal addresses are refused before any connection (the core, and over REST with a 4xx JSON answer); the
connection goes to the address that was checked (the host is resolved once); HTTP redirects are not followed (a
real redirecting server); every capture has open and read timeouts; ``user:pass@`` in source URLs is stored as
given but answered and logged as ``***`` (a real gateway reconnecting to a camera that is not there)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import cv2
import psycopg
import pytest
import yaml

from gateway.sources import LiveCapture, LiveSource, SourcePolicy, read_frame
from spoton.launcher import Stack, free_port
from spoton.sourceurl import (
    SourceRefused,
    check_url,
    parse_cidrs,
    redact_text,
    redact_url,
    restore_credentials,
)
from spoton.videoset import parse_video_set
from tests.conftest import gwapi
from tests.mjpeg_server import MjpegCamera

INTERNAL = [
    "http://127.0.0.1:{port}/cam.mjpeg",
    "http://[::1]:{port}/cam.mjpeg",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.1/cam.mjpeg",
    "http://localhost:{port}/cam.mjpeg",  # a name that resolves to loopback
    "http://[::ffff:127.0.0.1]:{port}/cam.mjpeg",  # loopback inside an IPv4-mapped IPv6 address
    "rtsp://127.0.0.1:{port}/stream",
    "rtsp://admin:pw@localhost:{port}/stream",
    "https://192.168.1.10/cam",
    "rtsp://100.64.0.1/stream",  # shared address space (carrier-grade NAT)
    "http://0.0.0.0:{port}/",
    "udp://224.0.0.1:{port}",
]
QUICK = SourcePolicy(timeout_s=1.0)


class Listener:
    """A TCP port on 127.0.0.1 and ::1 that counts the connections it accepts (and answers nothing)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = 0
        self.socks = []
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, self.port))
            except OSError:  # no IPv6 loopback here
                s.close()
                continue
            s.listen(16)
            s.settimeout(0.2)
            self.socks.append(s)
        self._stop = threading.Event()
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            for s in self.socks:
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                self.accepted += 1
                self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self.socks + self.held:
            s.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.mark.parametrize("template", INTERNAL)
def test_internal_addresses_refused_before_connecting(template: str, listener: Listener) -> None:
    url = template.format(port=listener.port)
    with pytest.raises(SourceRefused, match="refused"):
        check_url(url)
    with pytest.raises(SourceRefused):
        LiveCapture(url, QUICK)
    with pytest.raises(SourceRefused):
        read_frame(url, policy=QUICK)
    source = LiveSource(url, policy=QUICK)
    try:
        assert source.state == "reconnecting" and "refused" in source.last_error, source.last_error
        assert "pw" not in source.last_error
    finally:
        source.close()
    time.sleep(0.3)
    assert listener.accepted == 0  # nothing ever connected


def test_allow_cidrs_open_named_ranges_only() -> None:
    loopback = parse_cidrs("127.0.0.0/8")
    assert check_url("http://127.0.0.1:8080/x", loopback).address == "127.0.0.1"
    assert check_url("rtsp://localhost:554/x", loopback).address == "127.0.0.1"
    with pytest.raises(SourceRefused):
        check_url("http://[::1]/x", loopback)  # IPv6 loopback is another range
    with pytest.raises(SourceRefused):
        check_url("http://10.0.0.1/x", loopback)
    # Metadata endpoints stay shut inside an allowed range; only naming the address itself opens it.
    with pytest.raises(SourceRefused, match="metadata"):
        check_url("http://169.254.169.254/", parse_cidrs("169.254.0.0/16"))
    assert check_url("http://169.254.10.20/", parse_cidrs("169.254.0.0/16")).address == "169.254.10.20"
    assert check_url("http://169.254.169.254/", parse_cidrs("169.254.169.254")).address == "169.254.169.254"
    assert check_url("http://8.8.8.8/cam", ()).address == "8.8.8.8"  # public addresses need nothing
    with pytest.raises(ValueError, match="not an address"):
        parse_cidrs("127.0.0.0/8, intranet")


def test_host_resolved_once_and_connection_pinned() -> None:
    """A resolver whose second answer would be internal (DNS rebinding) is asked once; the URL handed to FFmpeg
    names the checked address, so FFmpeg resolves nothing."""
    answers = [["93.184.216.34"], ["10.0.0.1"]]
    asked: list[str] = []

    def rebinding(host: str, port: int | None) -> list:
        asked.append(host)
        return [ip_address(a) for a in answers[len(asked) - 1]]

    checked = check_url("rtsp://admin:pw@camera.example:8554/live?ch=1", (), rebinding)
    assert asked == ["camera.example"]
    assert checked.pinned == "rtsp://admin:pw@93.184.216.34:8554/live?ch=1"
    with pytest.raises(SourceRefused, match=r"camera\.example resolves to 10\.0\.0\.1"):
        check_url("rtsp://camera.example/live", (), rebinding)
    # One internal answer among public ones refuses the name.
    with pytest.raises(SourceRefused):
        check_url("http://mixed.example/", (), lambda h, p: [ip_address("93.184.216.34"), ip_address("127.0.0.1")])


@pytest.fixture
def camera(demo_dir: Path) -> Iterator[MjpegCamera]:
    cam = MjpegCamera(demo_dir / "cam1.mp4", free_port(), fps=20.0, frames=10, host="127.0.0.2")
    cam.start()
    yield cam
    cam.stop()


class Redirector:
    """``http://127.0.0.1:{port}/cam.mjpeg`` answering 302 to ``target``."""

    def __init__(self, target: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpeg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_http_redirect_to_a_refused_address_is_not_followed(camera: MjpegCamera) -> None:
    """Only the first hop (127.0.0.1/32) is allowed; its redirect points at a camera on 127.0.0.2."""
    first_hop = SourcePolicy(parse_cidrs("127.0.0.1/32"), timeout_s=2.0)
    redirector = Redirector(camera.url)
    try:
        with pytest.raises(SourceRefused, match=r"127\.0\.0\.2 is a loopback"):
            LiveCapture(camera.url, first_hop)  # the target itself is refused
        with pytest.raises(SourceRefused, match="redirect"):
            LiveCapture(redirector.url, first_hop)
        with pytest.raises(SourceRefused, match="redirect"):
            read_frame(redirector.url, policy=first_hop)
        assert camera.requests == []  # nobody reached the target
        # The control: FFmpeg left to itself follows the redirect, so the refusal above is ours.
        cap = cv2.VideoCapture(redirector.url, cv2.CAP_FFMPEG)
        try:
            assert cap.isOpened() and cap.read()[0]
        finally:
            cap.release()
        assert len(camera.requests) == 1
    finally:
        redirector.close()


def test_allowed_http_camera_gets_its_host_header(camera: MjpegCamera) -> None:
    """Through the checked address, but with the URL's own host name in the request (virtual hosts still work)."""
    policy = SourcePolicy(parse_cidrs("127.0.0.0/8"), timeout_s=5.0)
    url = camera.url.replace("127.0.0.2", "localhost")  # resolves to 127.0.0.1: the camera is not there
    with pytest.raises(ValueError, match="cannot open"):
        LiveCapture(url, policy)
    image = read_frame(camera.url, policy=policy)
    assert image.shape == (480, 640, 3)
    source = LiveSource(camera.url, policy=policy)
    try:
        deadline = time.monotonic() + 10
        while source.take() is None:
            assert time.monotonic() < deadline, source.last_error
            time.sleep(0.05)
        assert source.state == "live"
    finally:
        source.close()
    assert camera.requests[:1] == [f"127.0.0.2:{camera.port}"]


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_silent_servers_time_out(scheme: str, listener: Listener) -> None:
    """A server that accepts and never answers: opening (and ``read_frame``) fails within the timeout."""
    policy = SourcePolicy(parse_cidrs("127.0.0.0/8"), timeout_s=1.0)
    url = f"{scheme}://127.0.0.1:{listener.port}/stream"
    for attempt in (lambda: LiveCapture(url, policy), lambda: read_frame(url, policy=policy)):
        started = time.monotonic()
        with pytest.raises(ValueError):
            attempt()
        assert time.monotonic() - started < 6.0
    assert listener.accepted >= 2  # it did connect: the timeout, not a refusal, ended it


def test_stalled_stream_read_times_out(demo_dir: Path) -> None:
    """Frames, then silence: the next read gives up after the read timeout instead of hanging."""
    jpeg = cv2.imencode(".jpg", _frame(demo_dir))[1].tobytes()
    stall = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for _ in range(30):
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                self.wfile.write(part + jpeg + b"\r\n")
            self.wfile.flush()
            stall.wait(30)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        policy = SourcePolicy(parse_cidrs("127.0.0.1/32"), timeout_s=1.0)
        live = LiveCapture(f"http://127.0.0.1:{server.server_address[1]}/cam", policy)
        try:
            frames = 0
            started = time.monotonic()
            while live.read()[0]:
                frames += 1
                assert frames <= 30
            assert frames >= 20 and time.monotonic() - started < 8.0
        finally:
            live.release()
    finally:
        stall.set()
        server.shutdown()
        server.server_close()


def _frame(demo_dir: Path):  # type: ignore[no-untyped-def]
    cap = cv2.VideoCapture(str(demo_dir / "cam1.mp4"))
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def test_credentials_redacted() -> None:
    assert redact_url("rtsp://admin:s3cret@cam.local:554/live") == "rtsp://***@cam.local:554/live"
    assert redact_url("http://cam/snap?user=admin&pwd=s3cret&ch=1") == "http://cam/snap?user=***&pwd=***&ch=1"
    assert redact_url("cam1.mp4") == "cam1.mp4"
    # A client sending back what it read keeps the stored credentials; anything else it sends is taken as is.
    stored = "rtsp://admin:s3cret@cam.local:554/live"
    assert restore_credentials("rtsp://***@cam.local:554/live", stored) == stored
    assert restore_credentials("rtsp://***@other:554/live", stored) == "rtsp://***@other:554/live"
    assert restore_credentials("rtsp://new:pw@cam.local:554/live", stored) == "rtsp://new:pw@cam.local:554/live"
    line = "cannot open 'rtsp://admin:s3cret@10.0.0.5/x' (was http://u:p@h/)"
    assert redact_text(line) == "cannot open 'rtsp://***@10.0.0.5/x' (was http://***@h/)"
    doc = {"name": "s", "floor": {"width_m": 1, "height_m": 1}, "cameras": [{"id": "c", "source": "rtsp://a:b@h/x"}]}
    vs = parse_video_set(doc, Path("s.yaml"))
    assert vs.cameras[0].source == "rtsp://a:b@h/x"  # stored and used as given
    assert vs.to_dict()["cameras"][0]["source"] == "rtsp://***@h/x"
    with pytest.raises(SourceRefused) as err:
        check_url("rtsp://admin:s3cret@127.0.0.1/x")
    assert "s3cret" not in str(err.value) and "***@127.0.0.1" in str(err.value)


def site(demo_dir: Path, name: str, source: str) -> dict:
    demo = yaml.safe_load((demo_dir / "demo.yaml").read_text())
    return {"name": name, "floor": demo["floor"], "cameras": [{"id": "ip", "source": source, "fps": 5.0}]}


def test_rest_refuses_internal_sources(stack: Stack, demo_dir: Path) -> None:
    """A gateway with the default policy (the test stack allows loopback for its cameras; this one does not)."""
    url = stack.start_gateway("gateway-ssrf", {"SOURCE_ALLOW_CIDRS": ""})
    try:
        api = url + "/api/v1/video-sets/"
        for template in INTERNAL:
            if template.startswith("udp"):  # not among the default SOURCE_SCHEMES anyway
                continue
            source = template.format(port=8554)
            r = gwapi.post(api, json=site(demo_dir, f"ssrf-{uuid.uuid4().hex[:6]}", source), timeout=10)
            assert r.status_code == 400, (source, r.text)
            error = r.json()["error"]
            assert error["code"] == "invalid_argument" and "refused" in error["message"], error
            assert "pw@" not in error["message"]
        # The stack's own gateway allows loopback (SOURCE_ALLOW_CIDRS=127.0.0.0/8) and still refuses the rest.
        r = gwapi.post(
            stack.gateway_url + "/api/v1/video-sets/",
            json=site(demo_dir, f"ssrf-{uuid.uuid4().hex[:6]}", "http://169.254.169.254/latest/"),
            timeout=10,
        )
        assert r.status_code == 400 and "metadata" in r.json()["error"]["message"]
    finally:
        stack.procs.pop("gateway-ssrf").terminate()


def test_credentials_never_answered_nor_logged(stack: Stack, demo_dir: Path, database_url: str) -> None:
    """A camera URL with user:pass that cannot be reached: the gateway retries it (and logs that), answers it as
    ``***`` everywhere, keeps it as given, and no log file of any service holds the password."""
    secret = f"pw{uuid.uuid4().hex[:10]}"
    dead_port = free_port()
    source = f"rtsp://admin:{secret}@127.0.0.1:{dead_port}/stream1"
    key = "gateway-cred"
    url = stack.start_gateway(key, {"SOURCE_ALLOW_CIDRS": "127.0.0.1/32", "SOURCE_TIMEOUT_S": "1"})
    name = f"cred-{uuid.uuid4().hex[:6]}"
    api = url + "/api/v1/video-sets/"
    try:
        r = gwapi.post(api, json=site(demo_dir, name, source), timeout=10)
        assert r.status_code == 201, r.text
        shown = f"rtsp://***@127.0.0.1:{dead_port}/stream1"
        assert r.json()["cameras"][0]["source"] == shown
        assert gwapi.get(api + name, timeout=10).json()["cameras"][0]["source"] == shown
        answers = [r.text, gwapi.get(api, timeout=10).text, gwapi.get(api + name, timeout=10).text]
        r = gwapi.post(url + "/api/v1/sessions/", json={"video_set": name, "options": {"max_steps": 3}}, timeout=30)
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        deadline = time.monotonic() + 60
        while True:
            summary = gwapi.get(f"{url}/api/v1/sessions/{sid}", timeout=10)
            if summary.json()["progress"]["ip"]["source_reconnects"] >= 2:
                break
            assert time.monotonic() < deadline, summary.text
            time.sleep(0.3)
        answers += [summary.text, gwapi.get(url + "/api/v1/sessions/", timeout=10).text]
        answers.append(gwapi.delete(f"{url}/api/v1/sessions/{sid}", timeout=30).text)
        assert all(secret not in a for a in answers)
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT doc FROM video_sets WHERE name = %s", (name,)).fetchone()[0]
        assert stored["cameras"][0]["source"] == source  # kept as given
        # Sending back what was read (the redacted URL) keeps the stored credentials; a new URL replaces them.
        shown_doc = gwapi.get(api + name, timeout=10).json()
        r = gwapi.put(api + name, json=site(demo_dir, name, shown_doc["cameras"][0]["source"]), timeout=10)
        assert r.status_code == 200, r.text
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT doc FROM video_sets WHERE name = %s", (name,)).fetchone()[0]
        assert stored["cameras"][0]["source"] == source
    finally:
        gwapi.delete(api + name, timeout=10)
        proc = stack.procs.pop(key)
        proc.terminate()
        proc.wait(30)
    logs = {p.name: p.read_text(errors="replace") for p in stack.log_dir.glob("*.log")}
    assert "source reconnecting" in logs[f"{key}.log"] and f"rtsp://***@127.0.0.1:{dead_port}" in logs[f"{key}.log"]
    assert [n for n, text in logs.items() if secret in text] == []
