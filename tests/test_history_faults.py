"""The history writer across a database restart: a throwaway embedded PostgreSQL (pgserver) is stopped in the
middle of a session and started again; every track point emitted reaches the table, none twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
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
