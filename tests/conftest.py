"""Shared fixtures: the short demo video set, the test database, and the six services as real processes; ``require``,
the one gate for a missing prerequisite."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import grpc
import httpx
import psycopg
import pytest
import yaml

from spoton.demo.data import gt_path
from spoton.demo.generate import generate
from spoton.launcher import REPO, Stack, start_stack

CI_FRAMES = 80

# The test stack runs with auth on (DESIGN section 3): one key per role, and the gateway's own key for the stages.
ADMIN_KEY, OPERATOR_KEY, VIEWER_KEY = "test-admin-key", "test-operator-key", "test-viewer-key"
SERVICE_KEY = "test-service-key"
AUTH_ENV = {
    "API_KEYS": f"{ADMIN_KEY}:admin,{OPERATOR_KEY}:operator,{VIEWER_KEY}:viewer",
    "SERVICE_KEY": SERVICE_KEY,
}
# Read-only: clients that add their own headers (Starlette's TestClient, schemathesis) must be given a copy.
AUTH = MappingProxyType({"X-API-Key": ADMIN_KEY})


def _with_key(fn):  # type: ignore[no-untyped-def]
    def call(*args, headers=None, **kwargs):  # type: ignore[no-untyped-def]
        return fn(*args, headers=AUTH | dict(headers or {}), **kwargs)

    return call


class _Api:
    """``httpx``'s functions with the admin key's header added (a ``headers=`` given wins): ``gwapi.get(url)``."""

    get = staticmethod(_with_key(httpx.get))
    post = staticmethod(_with_key(httpx.post))
    put = staticmethod(_with_key(httpx.put))
    patch = staticmethod(_with_key(httpx.patch))
    delete = staticmethod(_with_key(httpx.delete))
    stream = staticmethod(_with_key(httpx.stream))
    request = staticmethod(_with_key(httpx.request))


gwapi = _Api()


class _ServiceKey(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the gateway's service key to every call, as the gateway does."""

    def _details(self, details):  # type: ignore[no-untyped-def]
        return details._replace(metadata=[*(details.metadata or ()), ("x-api-key", SERVICE_KEY)])

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), requests)

    def intercept_stream_unary(self, continuation, details, requests):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), requests)


def service_channel(addr: str) -> grpc.Channel:
    """A channel to a stage service that presents SERVICE_KEY, as the gateway does."""
    ch = grpc.insecure_channel(
        addr, options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    )
    return grpc.intercept_channel(ch, _ServiceKey())


DEMO_DIR = REPO / "build" / "demo-test"
IN_CI = os.environ.get("CI") == "true"
# The tests run one pipeline at a time; the detector uses every core (the services' default, DETECTOR_THREADS=0).
DATA_HINT = (
    "put the PETS09-S2L1 files (PETS09-S2L1-gt.txt, PETS09-S2L1-det-sort-frcnn.txt) in SPOTON_DATA_DIR "
    "(default ../shared/data; README, 'Quick start')"
)


def require(present: object, what: str, install: str) -> None:
    """Skip the calling test when ``present`` is falsy, saying ``what`` is missing and ``install``, the step that
    installs it. Under ``CI=true`` (where `.ci/run` installs every prerequisite) fail instead: a broken install
    must not pass as a skip. The one skip CI allows, a service CI cannot have (a GPU, a real TimescaleDB), is a plain
    ``pytest.skip`` naming its environment variable."""
    if present:
        return
    message = f"{what} is missing; install: {install}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing prerequisite fails)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def database_url() -> str:
    """The machine's PostgreSQL (127.0.0.1:5432, database ``test``), or ``SPOTON_TEST_DATABASE_URL``."""
    url = os.environ.get("SPOTON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
            # Always-on sessions an interrupted earlier run left behind would be resumed by every gateway we start.
            if conn.execute("SELECT to_regclass('sessions')").fetchone()[0]:
                conn.execute(
                    "UPDATE sessions SET status = 'stopped' WHERE status IN ('starting', 'running', 'paused')"
                    " AND coalesce((options->>'always_on')::boolean, false)"
                )
    except psycopg.OperationalError as exc:
        # Always a failure (nearly every test needs it): `.ci/run` starts the cluster and creates `test`.
        pytest.fail(
            f"test database {url} is not reachable ({exc}); install: apt-get install -y postgresql, then .ci/run "
            "starts it and creates the database (or set SPOTON_TEST_DATABASE_URL)",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis (127.0.0.1:6379); unreachable is a failure (`.ci/run` starts it)."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis at {url} is not reachable ({exc}); install: apt-get install -y redis-server, then .ci/run "
            "starts it",
            pytrace=False,
        )
    return url


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new empty database on ``server_url``'s server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    """The demo video set cut to the first ``CI_FRAMES`` frames (regenerated when the count differs)."""
    report = DEMO_DIR / "report.json"
    if not (report.exists() and f'"frames": {CI_FRAMES},' in report.read_text()):
        shutil.rmtree(DEMO_DIR, ignore_errors=True)
        generate(DEMO_DIR, CI_FRAMES)
    write_edge_case_sets(DEMO_DIR)
    return DEMO_DIR


def write_edge_case_sets(directory: Path) -> None:
    """Two extra video sets: ``empty`` (an uncalibrated camera that sees nobody) and ``broken`` (a corrupt file)."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(directory / "empty.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 7, (320, 240))
    for _ in range(10):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    (directory / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    floor = "floor: {width_m: 10, height_m: 10}\n"
    demo = yaml.safe_load((directory / "demo.yaml").read_text())
    demo["name"] = "rules"
    demo["floor"]["image"] = "floor.png"
    cv2.imwrite(str(directory / "floor.png"), np.full((52, 60, 3), 200, np.uint8))
    demo["rules"] = [
        {"id": "crowd", "kind": "occupancy_above", "zone": "crossing", "max": 0},
        {"id": "linger", "kind": "loitering", "zone": "crossing", "seconds": 1.0},
    ]
    (directory / "rules.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    (directory / "empty.yaml").write_text(f"name: empty\n{floor}cameras:\n  - {{id: blank, source: empty.mp4}}\n")
    (directory / "broken.yaml").write_text(f"name: broken\n{floor}cameras:\n  - {{id: bad, source: broken.mp4}}\n")


@pytest.fixture(scope="session")
def ground_truth() -> Path:
    """The PETS09-S2L1 ground truth file; skips locally without it, fails under CI=true."""
    require(gt_path(), "the PETS09-S2L1 ground truth", DATA_HINT)
    return gt_path()


class WebhookReceiver:
    """A loopback HTTP server that records the JSON bodies POSTed to it (the gateway's alert webhook)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, demo_dir: Path, webhook: WebhookReceiver
) -> Iterator[Stack]:
    """All six services as local processes on free ports."""
    logs = tmp_path_factory.mktemp("service-logs")
    # The test cameras (tests/mjpeg_server.py) listen on loopback, which sources may not reach by default (SSRF).
    # Gateways spool pending history under one root here (a shared volume): each in <root>/<host>-<port>.
    spool = tmp_path_factory.mktemp("history-spool")
    env = {"ALERT_WEBHOOK_URL": webhook.url, "SOURCE_ALLOW_CIDRS": "127.0.0.0/8", "HISTORY_SPOOL_DIR": str(spool)}
    s = start_stack(logs, database_url, demo_dir, extra_env=env | AUTH_ENV)
    yield s
    s.stop()


@pytest.fixture
def channel_to(stack: Stack):  # type: ignore[no-untyped-def]
    opened: list[grpc.Channel] = []

    def open_channel(name: str) -> grpc.Channel:
        ch = service_channel(stack.addr(name))
        opened.append(ch)
        return ch

    yield open_channel
    for ch in opened:
        ch.close()
