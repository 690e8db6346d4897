"""The history writer across a database restart: a throwaway embedded PostgreSQL (pgserver) is stopped in the
middle of a session and started again; every track point emitted reaches the table, none twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pgserver
import psutil
import psycopg
import pytest
import websockets

from spoton.launcher import Stack
from tests.conftest import AUTH, gwapi


@pytest.fixture
def throwaway_db(tmp_path: Path) -> Iterator[pgserver.PostgresServer]:
    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    yield server
    server.cleanup()


def test_no_track_point_is_lost_across_a_database_restart(stack: Stack, throwaway_db) -> None:  # type: ignore[no-untyped-def]
    uri = throwaway_db.get_uri()
    url = stack.start_gateway("gateway-db", {"DATABASE_URL": uri})
    port = int(url.rsplit(":", 1)[1])
    try:
        body = {"video_set": "demo", "options": {"max_steps": 50}}
        sid = gwapi.post(url + "/api/v1/sessions/", json=body, timeout=30).json()["session_id"]
        seen: dict[str, object] = {}

        async def run() -> list[dict]:
            out: list[dict] = []
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws/tracking/{sid}", max_size=None, additional_headers=AUTH
            ) as ws:
                async for raw in ws:
                    msg = json.loads(raw)
                    out.append(msg)
                    if msg["type"] == "session_ended":
                        return out
                    if msg["step"] == 10:
                        pid = throwaway_db.get_pid()
                        os.kill(pid, signal.SIGINT)  # fast shutdown: the database goes away, clients cut off
                        await asyncio.to_thread(psutil.Process(pid).wait, 30)
                        await asyncio.sleep(2.0)
                        seen["during"] = gwapi.get(url + "/health", timeout=10).json()
                        await asyncio.to_thread(throwaway_db.ensure_postgres_running)
            return out

        messages = asyncio.run(run())
        assert messages[-1]["status"] == "finished"
        during = seen["during"]
        assert during["database_connected"] is False and during["status"] == "degraded"  # type: ignore[index]
        emitted = sum(len(c["tracks"]) for m in messages if m["type"] == "step" for c in m["cameras"].values())
        deadline = time.monotonic() + 40
        while True:
            try:
                with psycopg.connect(uri) as conn:
                    rows = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (sid,)).fetchone()[0]
            except psycopg.OperationalError:
                rows = -1
            if rows == emitted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rows == emitted
        history = gwapi.get(url + "/health", timeout=10).json()["history"]
        assert history["write_failures"] >= 1 and history["rows_dropped"] == 0 and history["connected"] is True
    finally:
        stack.procs.pop("gateway-db").terminate()


def test_a_sigkilled_gateway_loses_nothing_spooled_and_a_running_one_takes_over(
    stack: Stack, database_url: str
) -> None:
    """An always-on session runs on one gateway while another (the survivor) is already up; the first is SIGKILLed.
    Every track point emitted more than the loss window before the kill (HISTORY_FLUSH_S, with margin for a loaded
    machine) is stored exactly once; the survivor, without a restart, replays the spool and resumes the session.
    For the last 15 steps before the kill the victim's commits hang on a table lock, so those rows reach the
    table only through the spool."""
    flush_s = 0.5
    env = {"SESSION_HEARTBEAT_S": "1", "SESSION_TAKEOVER_S": "1", "HISTORY_FLUSH_S": str(flush_s)}
    victim = stack.start_gateway("gateway-victim", env)
    survivor = stack.start_gateway("gateway-survivor", env)
    survivor_pid = stack.procs["gateway-survivor"].pid
    port = int(victim.rsplit(":", 1)[1])
    body = {"video_set": "demo", "cameras": ["cam1"], "options": {"loop": True, "always_on": True}}
    sid = gwapi.post(victim + "/api/v1/sessions/", json=body, timeout=30).json()["session_id"]
    try:
        steps: list[tuple[float, dict]] = []  # (monotonic time received, step message)

        async def watch() -> float:
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws/tracking/{sid}", max_size=None, additional_headers=AUTH
            ) as ws:
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg["type"] == "step":
                        steps.append((time.monotonic(), msg))
                    if len(steps) == 10:  # from here on its commits hang: batches are only spooled
                        blocker.execute("LOCK TABLE track_points IN SHARE ROW EXCLUSIVE MODE")
                    # Killed once 25 steps ran and the 12th is older than the loss window with margin (a fast
                    # detector runs a step in well under 0.1 s: the step count alone would kill too early).
                    if len(steps) >= 25 and time.monotonic() - steps[11][0] > 4 * flush_s:
                        stack.kill("gateway-victim")
                        return time.monotonic()
            raise AssertionError("the stream ended before the kill")

        with psycopg.connect(database_url) as blocker:
            killed_at = asyncio.run(watch())
            stack.procs.pop("gateway-victim")
            blocker.rollback()  # the lock goes; the dead gateway's hung transaction never commits
        # The survivor (same process) takes the session over: running there, stepping, same id.
        deadline = time.monotonic() + 90
        while True:
            r = gwapi.get(f"{survivor}/api/v1/sessions/{sid}", timeout=10)
            if r.status_code == 200 and r.json()["status"] == "running" and r.json()["steps"] >= 3:
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        while True:  # and writes history for it (the tracker confirms tracks after a few frames)
            with psycopg.connect(database_url) as conn:
                later = conn.execute(
                    "SELECT count(*) FROM track_points WHERE session_id = %s AND time > %s",
                    (sid, steps[-1][1]["timestamp"]),
                ).fetchone()[0]
            if later > 0:
                break
            assert time.monotonic() < deadline, "the survivor stored no history for the session"
            time.sleep(0.5)
        assert stack.procs["gateway-survivor"].pid == survivor_pid and stack.procs["gateway-survivor"].poll() is None
        emitted = {m["step"]: len(m["cameras"]["cam1"]["tracks"]) for _, m in steps}
        spooled = {m["step"] for t, m in steps if t < killed_at - 4 * flush_s}
        last_ts = steps[-1][1]["timestamp"]
        with psycopg.connect(database_url) as conn:
            # The victim's rows are those at one of its (step, media time) pairs: the survivor resumes the session
            # after the last stored point, so its own steps (numbered from 1 again) may share times with the lost
            # window but never a victim's (step, time).
            victim_at = {m["step"]: datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")) for _, m in steps}
            stored = {
                step: n
                for step, at, n in conn.execute(
                    "SELECT step, time, count(*) FROM track_points WHERE session_id = %s AND time <= %s"
                    " GROUP BY step, time",
                    (sid, last_ts),
                ).fetchall()
                if victim_at.get(step) == at
            }
            duplicates = conn.execute(
                "SELECT count(*) - count(DISTINCT (camera_id, track_id, time)) FROM track_points WHERE session_id = %s",
                (sid,),
            ).fetchone()[0]
        # Any live gateway sharing the spool root may replay the dead one's spool first (the stack's own as well).
        replayed = sum(
            gwapi.get(url + "/health", timeout=10).json()["history"]["rows_replayed"]
            for url in (survivor, stack.gateway_url)
        )
        lost_steps = [s for s in emitted if emitted[s] and stored.get(s, 0) < emitted[s]]
        window = killed_at - min((t for t, m in steps if m["step"] in lost_steps), default=killed_at)
        print(
            f"loss window {window:.2f} s (HISTORY_FLUSH_S {flush_s}), survivor replayed {replayed} rows; "
            f"crash test: emitted {sum(emitted.values())} rows in {len(emitted)} steps, spooled-before-kill steps "
            f"{len(spooled)} ({sum(emitted[s] for s in spooled)} rows), stored {sum(stored.values())}, "
            f"lost {sum(emitted.values()) - sum(stored.values())} (steps {sorted(set(emitted) - set(stored))}), "
            f"duplicates {duplicates}, rows stored by the survivor {later}, survivor's history "
            f"{gwapi.get(survivor + '/health', timeout=10).json()['history']}"
        )
        assert len(spooled) >= 10 and sum(emitted[s] for s in spooled) > 0
        assert all(stored.get(s, 0) == emitted[s] for s in spooled), (emitted, stored)
        assert all(stored[s] == emitted[s] for s in stored), (emitted, stored)  # nothing doubled nor invented
        assert duplicates == 0 and replayed > 0
    finally:
        gwapi.delete(f"{survivor}/api/v1/sessions/{sid}", timeout=30)
        stack.procs.pop("gateway-survivor").terminate()
