"""Idempotent history writes and the on-disk spool, against the real PostgreSQL: a batch written twice, or a
dead gateway's spool replayed twice, stores each row once; a full spool drops the oldest batches and counts them."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gateway.history import HistoryWriter, replay_orphans
from gateway.rows import AlertRow, Batch, TrackPoint, ZoneEventRow
from gateway.schema import migrate
from gateway.spool import Spool, database_key

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def batch(session_id: str, steps: int = 20, tracks: int = 5) -> Batch:
    rows = [
        TrackPoint(T0 + timedelta(seconds=s), session_id, s, "cam1", s, t, t + 1, [1.0, 2.0, 30.0, 80.0], 0.9, 0.5, 1.5)
        for s in range(steps)
        for t in range(tracks)
    ]
    events = [ZoneEventRow(T0 + timedelta(seconds=s), session_id, "hall", 1, "enter") for s in range(3)]
    alerts = [AlertRow(T0, session_id, "crowd", "occupancy", "hall", None, 3.0, "three people")]
    alerts.append(AlertRow(T0, session_id, "dwell", "dwell", "hall", 2, 30.0, "long stay"))
    return Batch(rows, events, alerts)


def counts(url: str, session_id: str) -> dict[str, int]:
    """Rows per table, and rows beyond one per key (duplicates)."""
    with psycopg.connect(url) as conn:
        q = lambda sql: conn.execute(sql, (session_id,)).fetchone()[0]  # noqa: E731
        return {
            "track_points": q("SELECT count(*) FROM track_points WHERE session_id = %s"),
            "zone_events": q("SELECT count(*) FROM zone_events WHERE session_id = %s"),
            "alerts": q("SELECT count(*) FROM alerts WHERE session_id = %s"),
            "duplicates": q(
                "SELECT count(*) - count(DISTINCT (camera_id, track_id, time)) FROM track_points WHERE session_id = %s"
            ),
        }


@pytest.fixture
def url(database_url: str) -> str:
    migrate(database_url)
    return database_url


def test_the_same_batch_written_twice_is_stored_once(url: str, tmp_path: Path) -> None:
    sid = f"idem-{uuid.uuid4().hex[:8]}"
    b = batch(sid)

    async def run() -> tuple[int, int]:
        writer = HistoryWriter(url, spool_dir=tmp_path / "spool" / "me")
        await writer.start()
        writer.add_rows(b.rows)
        writer.add_events(b.events)
        writer.add_alerts(b.alerts)
        await writer.flush()
        again = await writer.write_batch(b)  # a commit whose acknowledgement was lost, retried
        left = len(writer.spool.segments())
        await writer.close()
        return again, left

    again, left = asyncio.run(run())
    assert again == 0 and left == 0
    assert counts(url, sid) == {"track_points": 100, "zone_events": 3, "alerts": 2, "duplicates": 0}


def test_a_dead_gateways_spool_replayed_twice_stores_each_row_once(url: str, tmp_path: Path) -> None:
    sid, purged = f"replay-{uuid.uuid4().hex[:8]}", f"purged-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "spool"
    with psycopg.connect(url) as conn:  # the session is recorded; ``purged`` was deleted after its rows were spooled
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, status, media_start) "
            "VALUES (%s, 'demo', ARRAY['cam1'], 'finished', %s)",
            (sid, T0),
        )
    dead = Spool(root / "dead", database_key(url))
    first, second = batch(sid, steps=10), batch(sid, steps=30)  # overlapping: the first 10 steps twice
    dead.write(first)
    dead.write(second)
    dead.write(batch(purged))
    dead.close()  # as if its process died: the lock is gone, the files stay
    shutil.copytree(root / "dead", tmp_path / "copy")
    other_db = Spool(root / "elsewhere", "otherhost:5432/other")  # another database's spool is never replayed
    other_db.write(batch(sid, steps=50))
    other_db.close()

    async def run() -> list[int]:
        writer = HistoryWriter(url, spool_dir=root / "me")
        await writer.start()
        stored = [await replay_orphans(root, root / "me", writer)]
        assert not (root / "dead").exists()
        shutil.copytree(tmp_path / "copy", root / "dead")  # the same spool once more
        stored.append(await replay_orphans(root, root / "me", writer))
        # A spool whose gateway lives (its lock held) is left alone.
        live = Spool(root / "live", database_key(url))
        live.write(batch(sid, steps=40))
        stored.append(await replay_orphans(root, root / "me", writer))
        live.close()
        await writer.close()
        return stored

    assert asyncio.run(run()) == [150, 0, 0]
    assert counts(url, sid) == {"track_points": 150, "zone_events": 3, "alerts": 2, "duplicates": 0}
    assert (root / "elsewhere").exists() and (root / "live").exists()
    assert counts(url, purged) == {"track_points": 0, "zone_events": 0, "alerts": 0, "duplicates": 0}


def test_a_restarted_writer_replays_its_own_spool(url: str, tmp_path: Path) -> None:
    """Batches sealed (spooled) but not written when the database was away are written by the next start."""
    sid = f"own-{uuid.uuid4().hex[:8]}"
    spool_dir = tmp_path / "spool" / "me"

    async def down() -> dict:
        writer = HistoryWriter("postgresql://postgres@127.0.0.1:1/none", spool_dir=spool_dir, max_pending_rows=250)
        await writer.start()
        for s in range(4):  # four batches of 100 track points (+5 events/alerts), bound 250: the oldest two go
            writer.add_rows(batch(sid, steps=20 * (s + 1))[0][-100:])
            await writer.seal()
        status = writer.status()
        writer._task.cancel()
        writer.spool.close()  # killed: nothing more is tried
        return status

    status = asyncio.run(down())
    assert status["rows_dropped"] == 200 and status["batches_spooled"] == 2 and status["rows_pending"] == 200

    async def up() -> dict:
        writer = HistoryWriter(url, spool_dir=spool_dir)
        await writer.start()
        await writer.flush()
        status = writer.status()
        await writer.close()
        return status

    status = asyncio.run(up())
    assert status["rows_replayed"] == 200 and status["rows_written"] == 200 and status["batches_spooled"] == 0
    assert counts(url, sid)["track_points"] == 200 and counts(url, sid)["duplicates"] == 0
