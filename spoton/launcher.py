"""Start every SpotOn service as a local process, wait until all are healthy, stop them all cleanly.

Used by the demo command and the end-to-end tests; ports come from the caller (tests use free ones).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("detection", "tracking", "reid", "mapping", "analytics")
DEFAULT_PORTS = {"detection": 50051, "tracking": 50052, "reid": 50053, "mapping": 50054, "analytics": 50055}
DEFAULT_METRICS = {"detection": 9101, "tracking": 9102, "reid": 9103, "mapping": 9104, "analytics": 9105}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(addr: str, check_alive=lambda: None, timeout_s: float = 180.0) -> None:  # type: ignore[no-untyped-def]
    """Block until the gRPC health service at ``addr`` says SERVING; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(addr) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            check_alive()
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{addr} not SERVING after {timeout_s:.0f} s")
            time.sleep(0.2)


@dataclass
class Stack:
    """The running processes and where they listen."""

    ports: dict[str, int]
    metrics_ports: dict[str, int]
    gateway_port: int
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def headers(self) -> dict[str, str]:
        """The client key's header when the stack was started with one (``SPOTON_API_KEY``, see ``local_auth``)."""
        key = self.env.get("SPOTON_API_KEY", "")
        return {"X-API-Key": key} if key else {}

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def start_service(self, name: str, key: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``name``'s process, kept as ``key`` (default ``name``; another key starts a second replica)."""
        module = "gateway.server" if name == "gateway" else f"{name}_svc.server"
        key = key or name
        with open(self.log_dir / f"{key}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=REPO,
                env=self.env | (env or {}),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[key] = proc
        return proc

    def start_replica(self, name: str, key: str, env: dict[str, str] | None = None) -> str:
        """A further replica of stage ``name`` on free ports (``env`` on top of the stack's), healthy on return; its
        ``host:port``."""
        port, metrics_port = free_port(), free_port()
        ports = {f"{name.upper()}_SVC_PORT": str(port), f"{name.upper()}_SVC_METRICS_PORT": str(metrics_port)}
        self.ports[key], self.metrics_ports[key] = port, metrics_port
        self.start_service(name, key, (env or {}) | ports)
        addr = f"127.0.0.1:{port}"
        wait_serving(addr, lambda: self._check_alive(key))
        return addr

    def start_gateway(self, key: str, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> str:
        """Another gateway process (its own port, ``env`` on top of the stack's), up on return; its base URL."""
        import httpx

        port = free_port()
        self.start_service("gateway", key, {"GATEWAY_PORT": str(port), **(env or {})})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive(key)
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{key} not up after {timeout_s:.0f} s; see {self.log_dir}")
            time.sleep(0.3)

    def kill(self, key: str) -> None:
        """SIGKILL one process (fault tests)."""
        proc = self.procs[key]
        proc.kill()
        proc.wait()

    def wait_healthy(self, timeout_s: float = 180.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        for name in (n for n in SERVICES if n in self.procs):
            wait_serving(self.addr(name), lambda n=name: self._check_alive(n), deadline - time.monotonic())
        while "gateway" in self.procs:
            self._check_alive("gateway")
            try:
                if httpx.get(self.gateway_url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway not up after {timeout_s:.0f} s; see {self.log_dir}")
            time.sleep(0.3)

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{tail}")

    def stop(self, timeout_s: float = 15.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def local_auth() -> dict[str, str]:
    """Env for a stack run locally (demo, benchmarks) with auth on: a fresh admin key (``SPOTON_API_KEY``, also what
    the ``spoton`` CLI reads) and the gateway's service key for the stages. Nothing is stored; each run makes new
    ones."""
    key = "spk_local_" + secrets.token_urlsafe(24)
    return {"API_KEYS": f"{key}:admin", "SPOTON_API_KEY": key, "SERVICE_KEY": secrets.token_urlsafe(24)}


def start_stack(
    log_dir: Path,
    database_url: str,
    video_sets_dir: Path,
    extra_env: dict[str, str] | None = None,
    default_ports: bool = False,
    only: tuple[str, ...] = (*SERVICES, "gateway"),
) -> Stack:
    """Start ``only`` these processes (default: all six) and wait until they are healthy."""
    ports = dict(DEFAULT_PORTS) if default_ports else {n: free_port() for n in SERVICES}
    metrics = dict(DEFAULT_METRICS) if default_ports else {n: free_port() for n in SERVICES}
    gateway_port = 8000 if default_ports else free_port()
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "VIDEO_SETS_DIR": str(video_sets_dir),
            "GATEWAY_PORT": str(gateway_port),
            "PYTHONUNBUFFERED": "1",
            "LOG_JSON": "false",
        }
    )
    for n in SERVICES:
        env[f"{n.upper()}_SVC_ADDR"] = f"127.0.0.1:{ports[n]}"
        env[f"{n.upper()}_SVC_PORT"] = str(ports[n])
        env[f"{n.upper()}_SVC_METRICS_PORT"] = str(metrics[n])
    env.update(extra_env or {})
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(ports, metrics, gateway_port, env, log_dir)
    try:
        for name in only:
            stack.start_service(name)
        stack.wait_healthy()
    except BaseException:
        stack.stop()
        raise
    return stack
