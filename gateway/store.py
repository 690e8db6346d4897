"""The gateway's rows in PostgreSQL: session records (record, finish, heartbeat, resume, purge, retention), video
sets stored over REST, and the persons a session saw. All SQL the routes need lives here."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from gateway.pipeline import Session
from spoton.corrections import follow_merges, merge_pairs
from spoton.timeutil import dt_to_ns, ns_to_dt

log = logging.getLogger("gateway")

# Every table keyed by session (deleted on purge), and the time column retention applies to.
PURGE_TABLES = (
    "track_points",
    "zone_events",
    "alerts",
    "persons",
    "presence_1m",
    "steps_1m",
    "presence_cells_1m",
    "presence_zone_1m",
    "presence_cells_1h",
    "sessions",
)
RETENTION_TABLES = (
    ("track_points", "time"),
    ("zone_events", "time"),
    ("alerts", "time"),
    ("presence_1m", "minute"),
    ("steps_1m", "minute"),
    ("presence_cells_1m", "minute"),
    ("presence_zone_1m", "minute"),
    ("presence_cells_1h", "hour"),
    ("zone_visit_bounds", "bucket"),
)


@dataclass(frozen=True)
class StoredSession:
    """An always-on session claimed for resuming: what it ran on and since when (``media_start_ns``, Unix ns)."""

    session_id: str
    video_set: str
    cameras: list[str]
    options: dict
    media_start_ns: int


@dataclass(frozen=True)
class PersonRecord:
    """A global person of a session: first and last seen (UTC) and the cameras that saw it."""

    global_id: int
    first_seen: datetime
    last_seen: datetime
    cameras: list[str]


class Store:
    """A small connection pool for the routes' reads and the session rows (the history writer keeps its own)."""

    def __init__(self, database_url: str) -> None:
        self.pool = AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False)

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def query(self, sql: str, params: tuple) -> list[tuple]:
        async with self.pool.connection(timeout=5.0) as conn:
            return await (await conn.execute(sql, params)).fetchall()

    async def execute(self, sql: str, params: tuple) -> None:
        async with self.pool.connection(timeout=5.0) as conn:
            await conn.execute(sql, params)

    async def ping(self) -> None:
        """Raises ``psycopg.Error`` / ``OSError`` when the database cannot answer."""
        await self.query("SELECT 1", ())

    # Session records.
    async def record_session(self, s: Session) -> None:
        await self.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, options, video_set_doc, status, media_start,"
            " heartbeat) VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
            (
                s.id,
                s.video_set.name,
                s.camera_ids,
                json.dumps(s.options, default=str),
                json.dumps(s.video_set.to_dict()),
                s.status,
                ns_to_dt(s.media_start_ns),  # as the track points' times: the buckets' origin, exact to the µs
            ),
        )

    async def finish_session(self, s: Session) -> None:
        """The session's end: final status, steps and last error."""
        await self.execute(
            "UPDATE sessions SET status = %s, ended_at = now(), steps = %s, last_error = %s WHERE session_id = %s",
            (s.status, s.steps, s.last_error, s.id),
        )

    async def release_session(self, session_id: str) -> None:
        """Leave an always-on session for the next gateway: still running, and nobody's heartbeat."""
        await self.execute("UPDATE sessions SET heartbeat = NULL WHERE session_id = %s", (session_id,))

    async def heartbeat(self, session_ids: list[str]) -> None:
        await self.query(
            "UPDATE sessions SET heartbeat = now(), status = 'running' WHERE session_id = ANY(%s) RETURNING session_id",
            (session_ids,),
        )

    async def claim_stale_always_on(self, stale_s: float) -> list[StoredSession]:
        """Always-on sessions nobody runs (heartbeat older than ``stale_s`` seconds, or cleared), claimed with a
        fresh heartbeat one by one so two gateways starting together do not both take one."""
        rows = await self.query(
            "UPDATE sessions SET heartbeat = now() WHERE session_id IN ("
            " SELECT session_id FROM sessions WHERE status IN ('starting', 'running', 'paused')"
            " AND coalesce((options->>'always_on')::boolean, false)"
            " AND (heartbeat IS NULL OR heartbeat < now() - make_interval(secs => %s))"
            " FOR UPDATE SKIP LOCKED)"
            " RETURNING session_id, video_set, cameras, options, media_start",
            (stale_s,),
        )
        return [
            StoredSession(sid, video_set, list(cameras), dict(options), dt_to_ns(media_start))
            for sid, video_set, cameras, options, media_start in rows
        ]

    async def last_point_ns(self, session_id: str) -> int | None:
        """The media time of a session's newest stored track point (Unix ns), None when it has none."""
        rows = await self.query(
            "SELECT max(time) FROM track_points WHERE session_id = %s",
            (session_id,),
        )
        return dt_to_ns(rows[0][0]) if rows and rows[0][0] is not None else None

    async def session_exists(self, session_id: str) -> bool:
        return bool(await self.query("SELECT 1 FROM sessions WHERE session_id = %s", (session_id,)))

    async def purge(self, session_id: str) -> int:
        """Delete every row keyed by the session (``PURGE_TABLES``), in one transaction; returns the rows deleted."""
        deleted = 0
        async with self.pool.connection(timeout=10.0) as conn, conn.transaction():
            for table in PURGE_TABLES:
                cur = await conn.execute(f"DELETE FROM {table} WHERE session_id = %s", (session_id,))
                deleted += cur.rowcount
        return deleted

    async def expire_history(self, days: float) -> int:
        """Delete history older than ``days`` (``RETENTION_TABLES``); returns the rows deleted."""
        deleted = 0
        async with self.pool.connection(timeout=10.0) as conn, conn.transaction():
            for table, column in RETENTION_TABLES:
                cur = await conn.execute(
                    f"DELETE FROM {table} WHERE {column} < now() - make_interval(secs => %s)", (days * 86400.0,)
                )
                deleted += cur.rowcount
        return deleted

    # Video sets stored over REST, and persons.
    async def video_set_docs(self) -> dict[str, dict]:
        """Stored video sets, name -> document, by name."""
        return dict(await self.query("SELECT name, doc FROM video_sets ORDER BY name", ()))

    async def insert_video_set(self, name: str, doc: dict) -> bool:
        """False when the name is taken."""
        sql = "INSERT INTO video_sets (name, doc) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING name"
        return bool(await self.query(sql, (name, json.dumps(doc))))

    async def update_video_set(self, name: str, doc: dict) -> bool:
        """False when there is no such stored set."""
        sql = "UPDATE video_sets SET doc = %s, updated_at = now() WHERE name = %s RETURNING name"
        return bool(await self.query(sql, (json.dumps(doc), name)))

    async def delete_video_set(self, name: str) -> bool:
        return bool(await self.query("DELETE FROM video_sets WHERE name = %s RETURNING name", (name,)))

    async def merges(self, session_id: str) -> dict[int, int]:
        """The session's merge corrections still in effect (reid_svc's ``identity_corrections``, same database;
        undone merges left out), chains followed: global id -> the id it now belongs to; empty without reid's table."""
        if (await self.query("SELECT to_regclass('identity_corrections')", ()))[0][0] is None:
            return {}
        rows = await self.query(
            "SELECT kind, detail FROM identity_corrections WHERE session_id = %s AND kind IN ('merge', 'undo') "
            "ORDER BY id",
            (session_id,),
        )
        return follow_merges(merge_pairs(rows))

    async def persons(self, session_id: str) -> list[PersonRecord]:
        rows = await self.query(
            "SELECT global_id, first_seen, last_seen, cameras FROM persons WHERE session_id = %s ORDER BY global_id",
            (session_id,),
        )
        return [PersonRecord(*row) for row in rows]
