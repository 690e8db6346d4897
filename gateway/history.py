"""History writer: batched COPY into PostgreSQL off the pipeline's hot path; failed batches are retried."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from pathlib import Path

import psycopg
from prometheus_client import Counter

from gateway.rows import (
    ALERT_COLUMNS,
    TRACK_POINT_COLUMNS,
    ZONE_EVENT_COLUMNS,
    AlertRow,
    Batch,
    TrackPoint,
    ZoneEventRow,
)
from gateway.spool import (
    Spool,
    claim_orphan_spools,
    database_key,
    decode_batch,
    release_orphan,
)
from spoton.bootstrap.logs import log_event
from spoton.rollups import REFRESH_SQL, refresh_params

log = logging.getLogger("gateway.history")


ROWS_DROPPED = Counter(
    "spoton_history_rows_dropped_total",
    "History rows (track points, zone events, alerts) dropped because the database was away too long",
)
ROWS_REPLAYED = Counter("spoton_history_rows_replayed_total", "Track points replayed from a spool left by a gateway")


class HistoryWriter:
    """Rows emitted by sessions, sealed into a batch every ``flush_s`` (or at ``batch_rows``), spooled to disk
    (when a spool directory is given), then written with COPY into a staging table and ``INSERT ... ON CONFLICT
    DO NOTHING`` on each table's key, so a replay or a lost acknowledgement never doubles a row.

    A failed write keeps its batches and retries with backoff; beyond ``max_pending_rows`` the oldest batches are
    dropped and counted. With a spool, a SIGKILLed gateway loses at most the rows of the interval not yet sealed
    (``flush_s``); the next gateway (or this one restarted) replays the rest.
    """

    def __init__(
        self,
        url: str,
        flush_s: float = 0.5,
        batch_rows: int = 5000,
        max_pending_rows: int = 1_000_000,
        spool_dir: Path | None = None,
    ) -> None:
        self.url = url
        self.max_pending_rows = max_pending_rows
        self.rows_dropped = 0
        self.flush_s = flush_s
        self.batch_rows = batch_rows
        self._pending: list[TrackPoint] = []
        self._pending_events: list[ZoneEventRow] = []
        self._pending_alerts: list[AlertRow] = []
        self._batches: list[tuple[Batch, Path | None]] = []  # sealed, not yet committed, oldest first
        # Track points held for their settled ids (``hold``): not yet spooled, and spooled copies with the keys of
        # their rows not yet released (a copy goes once they all are, and are sealed).
        self._held_pending: list[TrackPoint] = []
        self._held: list[tuple[Path, set[tuple]]] = []
        self.spool = Spool(spool_dir, database_key(url)) if spool_dir is not None else None
        self._sessions: dict[str, tuple] = {}
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._seal_lock = asyncio.Lock()  # pending rows -> a sealed (spooled) batch
        self._write_lock = asyncio.Lock()  # the database connection: one batch's transaction at a time
        self._sealed = asyncio.Event()
        self.rows_written = 0
        self.rows_replayed = 0
        self.batches_rejected = 0
        self.failures = 0
        self.connected = False

    async def start(self) -> None:
        """Load what an earlier run of this spool left behind (replayed first), then start the flush loop."""
        if self.spool is not None:
            for path in self.spool.segments():
                batch = decode_batch(await asyncio.to_thread(path.read_bytes))
                self._batches.append((batch, path))
                self.rows_replayed += len(batch.rows)
                ROWS_REPLAYED.inc(len(batch.rows))
            if self._batches:
                self._sealed.set()
        self._task = asyncio.create_task(self._run())

    def hold(self, rows: list[TrackPoint]) -> None:
        """Track points waiting for their settled ids (gateway.settle): with a spool, a copy is spooled at the next
        seal and replayed (provisional ids) only if this gateway dies before they are released with ``add_rows``;
        nothing is written from here."""
        if self.spool is not None:
            self._held_pending.extend(rows)

    def _release_held(self, rows: list[TrackPoint]) -> None:
        keys = {_key(r) for r in rows}
        self._held_pending = [r for r in self._held_pending if _key(r) not in keys]
        for _, waiting in self._held:
            waiting -= keys

    def add_rows(self, rows: list[TrackPoint]) -> None:
        """Queue track points (sealed into a batch at the next flush, or now at ``batch_rows``)."""
        if self._held_pending or self._held:
            self._release_held(rows)
        self._pending.extend(rows)
        self._bound()
        if len(self._pending) >= self.batch_rows:
            self._wake.set()

    def add_events(self, rows: list[ZoneEventRow]) -> None:
        self._pending_events.extend(rows)
        self._bound()

    def add_alerts(self, rows: list[AlertRow]) -> None:
        self._pending_alerts.extend(rows)
        self._bound()

    def _bound(self) -> None:
        """Beyond ``max_pending_rows`` (rows, events and alerts held while the database is away) drop the oldest:
        sealed batches first (their spool files too), then unsealed rows; counted in ``rows_dropped``."""
        excess = self.pending - self.max_pending_rows
        if excess <= 0:
            return
        dropped = 0
        while excess > 0 and self._batches:
            old, path = self._batches.pop(0)
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
            excess -= old.size
            dropped += old.size
        for part in (self._pending, self._pending_events, self._pending_alerts):
            cut = min(max(excess, 0), len(part))
            del part[:cut]
            excess -= cut
            dropped += cut
        self.rows_dropped += dropped
        ROWS_DROPPED.inc(dropped)

    async def drop_session(self, session_id: str) -> None:
        """Forget a purged session's pending rows (its spooled copies included) and wait for a write in progress."""
        async with self._seal_lock, self._write_lock:
            self._pending = [r for r in self._pending if r.session_id != session_id]
            self._pending_events = [r for r in self._pending_events if r.session_id != session_id]
            self._pending_alerts = [r for r in self._pending_alerts if r.session_id != session_id]
            self._held_pending = [r for r in self._held_pending if r.session_id != session_id]
            held = []
            for path, waiting in self._held:
                rest = [
                    r for r in decode_batch(await asyncio.to_thread(path.read_bytes)).rows if r.session_id != session_id
                ]
                await asyncio.to_thread(path.unlink, True)
                if rest:
                    path = await asyncio.to_thread(self.spool.write, Batch(rest, [], []), True)
                    held.append((path, {k for k in waiting if k[0] != session_id}))
            self._held = held
            kept = []
            for batch, path in self._batches:
                rest = Batch(
                    [r for r in batch.rows if r.session_id != session_id],
                    [r for r in batch.events if r.session_id != session_id],
                    [r for r in batch.alerts if r.session_id != session_id],
                )
                if rest.size != batch.size and path is not None:
                    await asyncio.to_thread(path.unlink, True)
                    path = await asyncio.to_thread(self.spool.write, rest) if rest.size else None
                if rest.size:
                    kept.append((rest, path))
            self._batches = kept

    def status(self) -> dict:
        return {
            "connected": self.connected,
            "rows_written": self.rows_written,
            "rows_pending": len(self._pending) + sum(len(b.rows) for b, _ in self._batches),
            "rows_held": len(self._held_pending) + sum(len(k) for _, k in self._held),
            "rows_dropped": self.rows_dropped,
            "rows_replayed": self.rows_replayed,
            "batches_rejected": self.batches_rejected,
            "batches_spooled": sum(1 for _, p in self._batches if p is not None),
            "spool_dir": str(self.spool.directory) if self.spool else None,
            "write_failures": self.failures,
        }

    @property
    def pending(self) -> int:
        return (
            len(self._pending)
            + len(self._pending_events)
            + len(self._pending_alerts)
            + sum(b.size for b, _ in self._batches)
        )

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=False)
        return self._conn

    async def seal(self) -> None:
        """Move the rows emitted since the last call into a batch, spooled (fsync) when there is a spool; beyond
        ``max_pending_rows`` the oldest batches are dropped (their files deleted) and counted."""
        async with self._seal_lock:
            await self._seal()
        self._sealed.set()

    async def _seal(self) -> None:
        if self._pending or self._pending_events or self._pending_alerts:
            batch = Batch(self._pending, self._pending_events, self._pending_alerts)
            self._pending, self._pending_events, self._pending_alerts = [], [], []
            path = await asyncio.to_thread(self.spool.write, batch) if self.spool is not None else None
            self._batches.append((batch, path))
            self._bound()
        if self.spool is None:
            return
        if self._held_pending:
            rows, self._held_pending = self._held_pending, []
            path = await asyncio.to_thread(self.spool.write, Batch(rows, [], []), True)
            self._held.append((path, {_key(r) for r in rows}))
        # Copies whose rows have all been released: those rows are in a sealed (spooled) batch by now.
        for path, _ in [e for e in self._held if not e[1]]:
            await asyncio.to_thread(path.unlink, True)
        self._held = [e for e in self._held if e[1]]

    async def flush(self) -> None:
        """Seal what is pending, then commit every sealed batch (oldest first)."""
        await self.seal()
        await self.write_sealed()

    async def write_sealed(self) -> None:
        """Commit the sealed batches, oldest first, each in its own transaction, deleting its spool file after;
        sealing goes on meanwhile (a database that hangs does not widen the loss window)."""
        async with self._write_lock:
            await self._write_sealed()

    async def _write_sealed(self) -> None:
        while self._batches:
            entry = self._batches[0]
            batch, path = entry
            try:
                await self._write_batch(batch)
            except psycopg.errors.IntegrityError as exc:
                # Not a key conflict (those are skipped): a row the schema refuses. Retrying cannot help.
                self._reject(batch, exc)
            except (psycopg.Error, OSError) as exc:
                self.failures += 1
                self.connected = False
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                log_event(
                    log, "history write failed; will retry", level=logging.WARNING, rows=batch.size, error=str(exc)
                )
                raise
            if entry in self._batches:  # not dropped by the bound meanwhile
                self._batches.remove(entry)
            if path is not None:
                await asyncio.to_thread(path.unlink, True)

    def _reject(self, batch: Batch, exc: Exception) -> None:
        self.batches_rejected += 1
        self.rows_dropped += batch.size
        ROWS_DROPPED.inc(batch.size)
        log_event(
            log, "history batch refused by the database; dropped", level=logging.ERROR, rows=batch.size, error=str(exc)
        )

    async def write_batch(self, batch: Batch, known_sessions_only: bool = False) -> int:
        """Commit one batch idempotently; returns the track points newly stored (the others were there already).
        ``known_sessions_only`` (a dead replica's spool) skips rows of sessions no longer recorded (purged)."""
        async with self._write_lock:
            return await self._write_batch(batch, known_sessions_only)

    async def _write_batch(self, batch: Batch, known_sessions_only: bool = False) -> int:
        conn = await self._connection()
        async with conn.transaction():
            if known_sessions_only:
                ids = list({r.session_id for part in batch for r in part})
                cur = await conn.execute("SELECT session_id FROM sessions WHERE session_id = ANY(%s)", (ids,))
                known = {r[0] for r in await cur.fetchall()}
                batch = Batch(*([r for r in part if r.session_id in known] for part in batch))
            inserted = 0
            for table, columns, rows in (
                ("track_points", TRACK_POINT_COLUMNS, batch.rows),
                ("zone_events", ZONE_EVENT_COLUMNS, batch.events),
                ("alerts", ALERT_COLUMNS, batch.alerts),
            ):
                if rows:
                    count = await copy_idempotent(conn, table, columns, rows)
                    inserted += count if table == "track_points" else 0
            await self._upsert_persons(conn, batch.rows)
            await self._refresh_rollups(conn, batch.rows)
        self.rows_written += inserted
        self.connected = True
        return inserted

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
        await asyncio.gather(self._seal_loop(), self._write_loop())

    async def _seal_loop(self) -> None:
        """Seal (spool) every ``flush_s``, or at ``batch_rows``, whatever the database does: the loss window."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_s)
            self._wake.clear()
            try:
                await self.seal()
            except OSError as exc:
                log_event(log, "history spool write failed", level=logging.ERROR, error=str(exc))

    async def _write_loop(self) -> None:
        """Write sealed batches as they come; after a failure, again with backoff (up to 10 s)."""
        backoff = self.flush_s
        while True:
            await self._sealed.wait()
            self._sealed.clear()
            try:
                await self.write_sealed()
                backoff = self.flush_s
            except (psycopg.Error, OSError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                self._sealed.set()

    async def close(self, timeout_s: float = 30.0) -> None:
        """Flush what is pending (retrying up to ``timeout_s``), then stop; what could not be written stays in the
        spool for the next start."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error, OSError):
                await self._task
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.pending and asyncio.get_running_loop().time() < deadline:
            try:
                await self.flush()
            except (psycopg.Error, OSError):
                await asyncio.sleep(0.5)
        if self.pending:
            log_event(
                log,
                "history rows not written at shutdown",
                level=logging.ERROR,
                rows=self.pending,
                spooled=self.spool is not None,
            )
        if self._conn is not None:
            await self._conn.close()
        if self.spool is not None:
            self.spool.close()


def _key(r: TrackPoint) -> tuple:
    """A track point's key in the database (migration 0006): the same sighting whatever its global id."""
    return (r.session_id, r.camera_id, r.track_id, r.time)


async def copy_idempotent(conn: psycopg.AsyncConnection, table: str, columns: tuple[str, ...], rows: list) -> int:
    """COPY ``rows`` into a temporary staging table, then insert those not stored yet (``ON CONFLICT DO NOTHING``
    on the table's key, migrations 0006 and 0009); returns the rows inserted."""
    staging = f"{table}_staging"
    cols = ", ".join(columns)
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS")
    async with conn.cursor().copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)
    cur = await conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} ON CONFLICT DO NOTHING")
    return cur.rowcount


async def replay_orphans(root: Path, own: Path, writer: HistoryWriter) -> int:
    """Commit the batches left in dead gateways' spools under ``root`` (shared volume), deleting each file once
    committed; returns the track points newly stored. Spools still locked by a live gateway are left alone."""
    stored = 0
    for directory, fd in await asyncio.to_thread(claim_orphan_spools, root, own, database_key(writer.url)):
        emptied = False
        try:
            for path in Spool.ordered(directory):
                batch = decode_batch(await asyncio.to_thread(path.read_bytes))
                try:
                    stored += await writer.write_batch(batch, known_sessions_only=True)
                except psycopg.errors.IntegrityError as exc:
                    writer._reject(batch, exc)
                writer.rows_replayed += len(batch.rows)
                ROWS_REPLAYED.inc(len(batch.rows))
                await asyncio.to_thread(path.unlink, True)
            emptied = True
            log_event(log, "replayed a dead gateway's history spool", spool=str(directory), rows=stored)
        finally:
            await asyncio.to_thread(release_orphan, directory, fd, emptied)
    return stored
