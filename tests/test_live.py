"""Live fan-out through Redis: two gateway processes share sessions (DESIGN §8), and a Redis that goes away
degrades the fan-out without touching the pipeline."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import websockets

from spoton.launcher import Stack, free_port
from tests.conftest import AUTH, gwapi


@pytest.fixture(scope="module")
def two_gateways(stack: Stack, redis_url: str) -> Iterator[tuple[str, str]]:
    a = stack.start_gateway("gateway-a", {"REDIS_URL": redis_url})
    b = stack.start_gateway("gateway-b", {"REDIS_URL": redis_url})
    yield a, b
    for key in ("gateway-a", "gateway-b"):
        stack.procs.pop(key).terminate()


async def follow(url: str) -> list[dict]:
    out: list[dict] = []
    async with websockets.connect(url, max_size=None, additional_headers=AUTH) as ws:
        async for raw in ws:
            out.append(json.loads(raw))
            if out[-1]["type"] == "session_ended":
                break
    return out


async def follow_both(ws_b: str, ws_b_focus: str) -> tuple[list[dict], list[dict]]:
    return await asyncio.gather(follow(ws_b), follow(ws_b_focus))


def test_a_session_on_one_gateway_is_served_by_another(two_gateways: tuple[str, str], stack: Stack) -> None:
    a, b = two_gateways
    r = gwapi.post(f"{a}/api/v1/sessions/", json={"video_set": "demo", "options": {"max_steps": 30}}, timeout=30)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    ws_b = b.replace("http", "ws") + f"/ws/tracking/{sid}"
    messages, focus = asyncio.run(follow_both(ws_b, ws_b + "?global_id=1"))
    steps = [m for m in messages if m["type"] == "step"]
    assert messages[-1]["status"] == "finished"
    assert len(steps) >= 20 and steps[-1]["step"] == 30  # subscribed a moment after the start
    assert all(
        t["global_id"] == 1 for m in focus if m["type"] == "step" for c in m["cameras"].values() for t in c["tracks"]
    )
    assert any(c["tracks"] for m in focus if m["type"] == "step" for c in m["cameras"].values())
    summary = gwapi.get(f"{b}/api/v1/sessions/{sid}", timeout=10).json()
    assert summary["status"] == "finished" and summary["steps"] == 30
    assert gwapi.get(f"{b}/api/v1/tracking/{sid}", timeout=10).json()["step"] == 30
    assert sid in {s["session_id"] for s in gwapi.get(f"{b}/api/v1/sessions/", timeout=10).json()["sessions"]}
    assert gwapi.get(f"{b}/health", timeout=10).json()["redis_connected"] is True
    # A gateway without Redis knows only its own sessions.
    assert gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).status_code == 404


@pytest.fixture
def throwaway_redis() -> Iterator[tuple[int, list[subprocess.Popen]]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; install: apt-get install -y redis-server", pytrace=False)
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [server, "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
            )
        )
        time.sleep(0.5)

    start()
    yield port, procs, start  # type: ignore[misc]
    for p in procs:
        p.kill()


def test_redis_outage_degrades_health_and_spares_the_pipeline(stack: Stack, throwaway_redis) -> None:  # type: ignore[no-untyped-def]
    port, procs, start_redis = throwaway_redis
    gw = stack.start_gateway("gateway-r", {"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    try:
        assert gwapi.get(f"{gw}/health", timeout=10).json()["redis_connected"] is True
        procs[-1].kill()
        procs[-1].wait()
        health = gwapi.get(f"{gw}/health", timeout=10).json()
        assert health["redis_connected"] is False and health["status"] == "degraded"
        r = gwapi.post(f"{gw}/api/v1/sessions/", json={"video_set": "demo", "options": {"max_steps": 10}}, timeout=30)
        sid = r.json()["session_id"]
        messages = asyncio.run(follow(gw.replace("http", "ws") + f"/ws/tracking/{sid}"))
        assert messages[-1]["status"] == "finished" and messages[-1]["steps"] == 10  # in-process fan-out still works
        start_redis()
        deadline = time.monotonic() + 15
        while not gwapi.get(f"{gw}/health", timeout=10).json()["redis_connected"]:
            assert time.monotonic() < deadline, "health did not recover with Redis"
            time.sleep(0.5)
    finally:
        stack.procs.pop("gateway-r").terminate()
