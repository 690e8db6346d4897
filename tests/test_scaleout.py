"""Scale-out and stage faults with real processes (DESIGN §8): replicas behind one address, a tracking replica and
the detector killed mid-session, the session going on."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import websockets

from gateway.requests import TRACK_ID_EPOCH
from spoton.bootstrap.client import sync_channel
from spoton.bootstrap.replicas import ReplicaRing, resolve
from spoton.launcher import SERVICES, Stack, start_stack
from spoton.v1 import mapping_pb2, mapping_pb2_grpc
from tests.conftest import AUTH, AUTH_ENV, SERVICE_KEY, gwapi

STEPS = 80


def test_ring_moves_only_the_lost_replicas_keys() -> None:
    nodes = ["10.0.0.1:50052", "10.0.0.2:50052", "10.0.0.3:50052"]
    keys = [f"session/cam{i}" for i in range(300)]
    ring = ReplicaRing(nodes)
    before = {k: ring.owner(k) for k in keys}
    assert len(set(before.values())) == 3  # every replica gets cameras
    ring.update(nodes[:2])
    after = {k: ring.owner(k) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == nodes[2] for k in moved)
    assert ReplicaRing(list(reversed(nodes))).owner("s/cam1") == ReplicaRing(nodes).owner("s/cam1")


def test_resolve_expands_names_and_lists() -> None:
    assert resolve("127.0.0.1:1,127.0.0.1:2") == ["127.0.0.1:1", "127.0.0.1:2"]
    assert "127.0.0.1:7" in resolve("dns:///localhost:7")
    assert resolve("no-such-host.invalid:5") == []
    with pytest.raises(ValueError):
        resolve("no-port")


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, database_url: str, demo_dir: Path) -> Iterator[Stack]:
    """Every stage, second tracking, mapping and reid replicas, and a gateway that knows both tracking and reid
    replicas. Galleries are persisted every 0.5 s of stream time."""
    stack = start_stack(
        tmp_path_factory.mktemp("scaled-logs"),
        database_url,
        demo_dir,
        extra_env={"REID_GALLERY_PERSIST_S": "0.5", **AUTH_ENV},
        only=SERVICES,
    )
    try:
        stack.start_replica("tracking", "tracking-2")
        stack.start_replica("mapping", "mapping-2")
        stack.start_replica("reid", "reid-2")
        env = {
            "TRACKING_SVC_ADDR": f"{stack.addr('tracking')},127.0.0.1:{stack.ports['tracking-2']}",
            "REID_SVC_ADDR": f"{stack.addr('reid')},127.0.0.1:{stack.ports['reid-2']}",
            "STAGE_RECONNECT_TIMEOUT_S": "90",
        }
        stack.start_service("gateway", env=env)
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()


def started_calls(metrics_port: int, method: str) -> float:
    text = gwapi.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    m = re.search(rf'spoton_grpc_started_total{{method="{method}",service="[^"]+"}} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def test_unary_calls_are_spread_over_replicas(scaled: Stack) -> None:
    target = f"{scaled.addr('mapping')},127.0.0.1:{scaled.ports['mapping-2']}"
    with sync_channel(target) as ch:
        stub = mapping_pb2_grpc.MappingServiceStub(ch)
        for _ in range(20):
            stub.ListCalibrations(
                mapping_pb2.ListCalibrationsRequest(), metadata=(("x-api-key", SERVICE_KEY),), timeout=10
            )
    first = started_calls(scaled.metrics_ports["mapping"], "ListCalibrations")
    second = started_calls(scaled.metrics_ports["mapping-2"], "ListCalibrations")
    assert first + second >= 20 and first >= 5 and second >= 5, (first, second)


async def follow_and_break(stack: Stack, sid: str) -> list[dict]:
    """Record the session's steps; at step 15 SIGKILL the tracking replica that owns cam1 and the detector, and
    start a new detector on the same port."""
    replicas = {stack.addr("tracking"): "tracking", f"127.0.0.1:{stack.ports['tracking-2']}": "tracking-2"}
    victim = replicas[ReplicaRing(list(replicas)).owner(f"{sid}/cam1")]
    messages: list[dict] = []
    broken = False
    url = f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"
    async with websockets.connect(url, max_size=None, additional_headers=AUTH) as ws:
        async for raw in ws:
            msg = json.loads(raw)
            messages.append(msg)
            if msg["type"] == "session_ended":
                return messages
            if not broken and msg.get("step", 0) >= 15:
                broken = True
                stack.kill(victim)
                stack.kill("detection")
                stack.start_service("detection")
    return messages


def test_session_survives_a_lost_tracking_replica_and_a_restarted_detector(scaled: Stack, database_url: str) -> None:
    body = {"video_set": "demo", "options": {"max_steps": STEPS}}
    r = gwapi.post(f"{scaled.gateway_url}/api/v1/sessions/", timeout=30, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    t0 = time.monotonic()
    messages = asyncio.run(follow_and_break(scaled, sid))
    summary = gwapi.get(f"{scaled.gateway_url}/api/v1/sessions/{sid}", timeout=10).json()
    assert messages[-1]["status"] == "finished", (messages[-1], summary)
    steps = [m for m in messages if m["type"] == "step"]
    assert [m["step"] for m in steps] == list(range(1, STEPS + 1))  # nothing lost, nothing doubled
    assert summary["reconnects"].get("detect", 0) >= 1 and summary["reconnects"].get("track", 0) >= 1, summary
    # Cameras whose replica died were re-hashed to the survivor, their trackers restarted in a new ID range.
    late_ids = {t["track_id"] for m in steps[20:] for c in m["cameras"].values() for t in c["tracks"]}
    early_ids = {t["track_id"] for m in steps[:15] for c in m["cameras"].values() for t in c["tracks"]}
    assert max(late_ids) >= TRACK_ID_EPOCH > max(early_ids)
    assert sum(1 for m in steps[20:] for c in m["cameras"].values() if c["tracks"]) > 0
    # The history holds exactly the observations emitted.
    emitted = sum(len(c["tracks"]) for m in steps for c in m["cameras"].values())
    deadline = time.monotonic() + 20
    while True:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (sid,)).fetchone()[0]
        if rows == emitted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rows == emitted
    assert time.monotonic() - t0 < 240


def restart(stack: Stack, key: str) -> None:
    """Start process ``key`` again on its ports (a replica such as ``reid-2`` is a second process of ``reid``)."""
    name = key.split("-")[0]
    ports = {
        f"{name.upper()}_SVC_PORT": str(stack.ports[key]),
        f"{name.upper()}_SVC_METRICS_PORT": str(stack.metrics_ports[key]),
    }
    stack.start_service(name, key, {} if key == name else ports)


async def follow_and_kill(stack: Stack, sid: str, plan: dict[int, str], restart_keys: set[str]) -> list[dict]:
    """Record the session; at each planned step SIGKILL that process, and start it again if it is in
    ``restart_keys``."""
    messages: list[dict] = []
    url = f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"
    async with websockets.connect(url, max_size=None, additional_headers=AUTH) as ws:
        async for raw in ws:
            msg = json.loads(raw)
            messages.append(msg)
            if msg["type"] == "session_ended":
                return messages
            victim = plan.pop(msg["step"], None)
            if victim:
                stack.kill(victim)
                if victim in restart_keys:
                    restart(stack, victim)
    return messages


def test_gallery_moves_to_another_reid_replica_and_mapping_restarts(scaled: Stack, database_url: str) -> None:
    """The reid replica holding the session's gallery dies for good (step 12): the session's Associate stream moves
    to the other replica, which resumes the stored gallery (the same people keep their global IDs). Then that
    replica, by now serving both reid streams (Embed and Associate), is SIGKILLed and restarted (step 30), and
    mapping too (step 40)."""
    body = {"video_set": "demo", "options": {"max_steps": STEPS}}
    sid = gwapi.post(f"{scaled.gateway_url}/api/v1/sessions/", json=body, timeout=30).json()["session_id"]
    replicas = {scaled.addr("reid"): "reid", f"127.0.0.1:{scaled.ports['reid-2']}": "reid-2"}
    owner = replicas[ReplicaRing(list(replicas)).owner(sid)]
    survivor = next(k for k in replicas.values() if k != owner)
    plan = {12: owner, 30: survivor, 40: "mapping"}
    messages = asyncio.run(follow_and_kill(scaled, sid, plan, restart_keys={survivor, "mapping"}))
    summary = gwapi.get(f"{scaled.gateway_url}/api/v1/sessions/{sid}", timeout=10).json()
    assert messages[-1]["status"] == "finished", (messages[-1], summary)
    steps = [m for m in messages if m["type"] == "step"]
    assert [m["step"] for m in steps] == list(range(1, STEPS + 1))
    reconnects = summary["reconnects"]
    # The identity embeddings' EmbedStream (ByteTrack takes no tracking embeddings) ran on one of the two replicas,
    # so it broke by step 30 at the latest; Associate broke twice. Measured before the identity budget: embed 2,
    # associate 2, project 1.
    assert reconnects.get("identity_embed", 0) >= 1 and reconnects.get("associate", 0) >= 2, reconnects
    assert reconnects.get("project", 0) >= 1, reconnects

    def gid_of(m: dict) -> dict[tuple[str, int], int]:
        return {(c, t["track_id"]): t["global_id"] for c, body in m["cameras"].items() for t in body["tracks"]}

    before, after = gid_of(steps[7]), gid_of(steps[24])
    kept = [k for k in before if k in after]
    assert len(kept) >= 3
    assert sum(before[k] == after[k] for k in kept) >= 0.8 * len(kept), (before, after)  # resumed, not restarted
    earlier = {g for m in steps[:12] for g in gid_of(m).values()}
    newer = {g for m in steps[20:] for g in gid_of(m).values()} - earlier
    # No global ID is ever reused; people do enter after step 20 (measured: 1-4 before step 12, 5-9 after step 20).
    assert newer and min(newer) > max(earlier), (earlier, newer)
    assert any(t["floor"] for m in steps[50:] for c in m["cameras"].values() for t in c["tracks"])  # mapping is back
    emitted = sum(len(c["tracks"]) for m in steps for c in m["cameras"].values())
    deadline = time.monotonic() + 20
    while True:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (sid,)).fetchone()[0]
        if rows == emitted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rows == emitted  # no step lost, none written twice
