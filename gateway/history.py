"""History writer: batched COPY into PostgreSQL off the pipeline's hot path; failed batches are retried."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import psycopg
from prometheus_client import Counter

from spoton.bootstrap.logs import log_event
from spoton.rollups import REFRESH_SQL, refresh_params

log = logging.getLogger("gateway.history")


class TrackPoint(NamedTuple):
    """One ``track_points`` row: a track seen by a camera at a step (pixels, metres, UTC time)."""

    time: datetime
    session_id: str
    step: int
    camera_id: str
    frame_index: int
    track_id: int
    global_id: int | None
    bbox: list[float]  # [x1, y1, x2, y2] pixels
    confidence: float
    floor_x_m: float | None
    floor_y_m: float | None


class ZoneEventRow(NamedTuple):
    """One ``zone_events`` row."""

    time: datetime
    session_id: str
    zone_id: str
    global_id: int
    kind: str


class AlertRow(NamedTuple):
    """One ``alerts`` row."""

    time: datetime
    session_id: str
    rule_id: str
    kind: str
    target: str
    global_id: int | None
    value: float
    message: str


# The COPY column lists are the rows' field names, so their order lives in one place.
TRACK_POINT_COLUMNS = TrackPoint._fields
ZONE_EVENT_COLUMNS = ZoneEventRow._fields
ALERT_COLUMNS = AlertRow._fields


ROWS_DROPPED = Counter(
    "spoton_history_rows_dropped_total", "Track points dropped because the database was away too long"
)


class HistoryWriter:
    """Queue of track-point rows flushed every ``flush_s`` (or ``batch_rows``) with COPY.

    A failed flush keeps its rows and retries with backoff, so a database restart loses nothing.
    """

    def __init__(
        self, url: str, flush_s: float = 0.5, batch_rows: int = 5000, max_pending_rows: int = 1_000_000
    ) -> None:
        self.url = url
        self.max_pending_rows = max_pending_rows
        self.rows_dropped = 0
        self.flush_s = flush_s
        self.batch_rows = batch_rows
        self._pending: list[TrackPoint] = []
        self._pending_events: list[ZoneEventRow] = []
        self._pending_alerts: list[AlertRow] = []
        self._sessions: dict[str, tuple] = {}
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self.rows_written = 0
        self.failures = 0
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def add_rows(self, rows: list[TrackPoint]) -> None:
        """Queue track points; beyond ``max_pending_rows`` (a database away for too long) the oldest are dropped
        and counted, so memory stays bounded."""
        self._pending.extend(rows)
        excess = len(self._pending) - self.max_pending_rows
        if excess > 0:
            del self._pending[:excess]
            self.rows_dropped += excess
            ROWS_DROPPED.inc(excess)
        if len(self._pending) >= self.batch_rows:
            self._wake.set()

    async def drop_session(self, session_id: str) -> None:
        """Forget a purged session's pending rows and wait for a flush in progress to finish."""
        async with self._flush_lock:
            self._pending = [r for r in self._pending if r.session_id != session_id]
            self._pending_events = [r for r in self._pending_events if r.session_id != session_id]
            self._pending_alerts = [r for r in self._pending_alerts if r.session_id != session_id]

    def status(self) -> dict:
        return {
            "connected": self.connected,
            "rows_written": self.rows_written,
            "rows_pending": len(self._pending),
            "rows_dropped": self.rows_dropped,
            "write_failures": self.failures,
        }

    def add_events(self, rows: list[ZoneEventRow]) -> None:
        self._pending_events.extend(rows)

    def add_alerts(self, rows: list[AlertRow]) -> None:
        self._pending_alerts.extend(rows)

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._pending_events) + len(self._pending_alerts)

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=False)
        return self._conn

    async def flush(self) -> None:
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        if not self.pending:
            return
        batch, self._pending = self._pending, []
        events, self._pending_events = self._pending_events, []
        alerts, self._pending_alerts = self._pending_alerts, []
        try:
            conn = await self._connection()
            async with conn.transaction():
                for table, columns, rows in (
                    ("track_points", TRACK_POINT_COLUMNS, batch),
                    ("zone_events", ZONE_EVENT_COLUMNS, events),
                    ("alerts", ALERT_COLUMNS, alerts),
                ):
                    if rows:
                        async with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                            for row in rows:
                                await copy.write_row(row)
                await self._upsert_persons(conn, batch)
                await self._refresh_rollups(conn, batch)
            self.rows_written += len(batch)
            self.connected = True
        except (psycopg.Error, OSError) as exc:
            self._pending[:0] = batch
            self._pending_events[:0] = events
            self._pending_alerts[:0] = alerts
            self.failures += 1
            self.connected = False
            if self._conn is not None:
                await self._conn.close()
            self._conn = None
            log_event(log, "history write failed; will retry", level=logging.WARNING, rows=len(batch), error=str(exc))
            raise

    async def _refresh_rollups(self, conn: psycopg.AsyncConnection, batch: list[TrackPoint]) -> None:
        """Recompute the per-minute rollups for the minutes this batch touched (spoton/rollups.py)."""
        spans: dict[str, list] = {}
        for row in batch:
            span = spans.setdefault(row.session_id, [row.time, row.time])
            span[0], span[1] = min(span[0], row.time), max(span[1], row.time)
        for session_id, (first, last) in spans.items():
            if session_id not in self._sessions:
                cur = await conn.execute(
                    "SELECT media_start, coalesce(video_set_doc->'floor'->'origin_m', '[0, 0]') FROM sessions "
                    "WHERE session_id = %s",
                    (session_id,),
                )
                found = await cur.fetchone()
                if found is None:
                    continue
                self._sessions[session_id] = (found[0], (float(found[1][0]), float(found[1][1])))
            origin, floor_origin = self._sessions[session_id]
            params = refresh_params(session_id, origin, floor_origin, first, last)
            for sql in REFRESH_SQL:
                await conn.execute(sql, params)

    async def _upsert_persons(self, conn: psycopg.AsyncConnection, batch: list[TrackPoint]) -> None:
        agg: dict[tuple[str, int], list] = {}
        cams: dict[tuple[str, int], set[str]] = defaultdict(set)
        for row in batch:
            if row.global_id is None:
                continue
            key, t = (row.session_id, row.global_id), row.time
            first_last = agg.setdefault(key, [t, t])
            first_last[0], first_last[1] = min(first_last[0], t), max(first_last[1], t)
            cams[key].add(row.camera_id)
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO persons (session_id, global_id, first_seen, last_seen, cameras) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (session_id, global_id) DO UPDATE SET "
                "first_seen = LEAST(persons.first_seen, EXCLUDED.first_seen), "
                "last_seen = GREATEST(persons.last_seen, EXCLUDED.last_seen), "
                "cameras = ARRAY(SELECT DISTINCT unnest(persons.cameras || EXCLUDED.cameras) ORDER BY 1)",
                [(s, g, fl[0], fl[1], sorted(cams[(s, g)])) for (s, g), fl in agg.items()],
            )

    async def _run(self) -> None:
        backoff = self.flush_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                await self.flush()
                backoff = self.flush_s
            except (psycopg.Error, OSError):
                backoff = min(backoff * 2, 10.0)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Flush what is pending (retrying up to ``timeout_s``), then stop."""
        if self._task:
            self._task.cancel()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._pending and asyncio.get_running_loop().time() < deadline:
            try:
                await self.flush()
            except (psycopg.Error, OSError):
                await asyncio.sleep(0.5)
        if self._pending:
            log_event(log, "history rows not written at shutdown", level=logging.ERROR, rows=len(self._pending))
        if self._conn is not None:
            await self._conn.close()
