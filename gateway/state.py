"""What the gateway's routes share: settings, service clients, the store, the history writer, live sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc
import psycopg
from psycopg_pool import PoolTimeout
from redis.exceptions import RedisError

from gateway.auth import Auth
from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from gateway.errors import ApiError
from gateway.history import HistoryWriter, replay_orphans
from gateway.live import RedisLive
from gateway.pipeline import Session
from gateway.schema import migrate
from gateway.store import Store
from spoton.bootstrap.errors import NotFoundError
from spoton.db import resolve_database_url
from spoton.v1 import reid_pb2
from spoton.videoset import VideoSet, VideoSetCatalog, check_sources, parse_video_set

log = logging.getLogger("gateway")
BACKGROUND = ("session-heartbeat", "history-retention", "session-takeover")


class Gateway:
    """State the routes share, started and stopped by the app's lifespan."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.catalog = VideoSetCatalog(Path(settings.video_sets_dir))
        self.sessions: dict[str, Session] = {}
        self.clients: ServiceClients | None = None
        self.history: HistoryWriter | None = None
        self.database_url = ""
        self.store: Store | None = None
        self.tasks: set[asyncio.Task] = set()
        self.live: RedisLive | None = None
        self.shutting_down = False
        self.auth = Auth(settings)

    async def start(self) -> None:
        self.database_url = await asyncio.to_thread(resolve_database_url, self.settings.database_url)
        await asyncio.to_thread(migrate, self.database_url, self.settings)
        self.store = Store(self.database_url)
        await self.store.open()
        self.history = HistoryWriter(
            self.database_url,
            self.settings.history_flush_s,
            self.settings.history_batch_rows,
            self.settings.history_max_pending_rows,
            self.settings.spool_directory,
        )
        await self.history.start()
        with contextlib.suppress(psycopg.Error, OSError):
            await self.history.flush()  # this replica's own spool first, so resumed sessions see its rows
        await self.replay_dead_spools()
        self.clients = ServiceClients.connect(self.settings)
        if self.settings.redis_url:
            self.live = RedisLive(self.settings.redis_url)
            await self.live.start()
        await self.auth.start(self.store, self.live)
        await self.resume_always_on()
        self.tasks.add(asyncio.create_task(self._heartbeat(), name="session-heartbeat"))
        self.tasks.add(asyncio.create_task(self._retention(), name="history-retention"))
        self.tasks.add(asyncio.create_task(self._takeover(), name="session-takeover"))

    async def stop(self) -> None:
        self.shutting_down = True
        for task in list(self.tasks):
            if task.get_name() in BACKGROUND:
                task.cancel()
        for s in self.sessions.values():
            await s.stop()
        for task in list(self.tasks):  # the sessions' end records
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        if self.history:
            await self.history.close()
        if self.clients:
            await self.clients.close()
        if self.live:
            await self.live.close()
        if self.store is not None:
            await self.store.close()

    def session(self, session_id: str) -> Session:
        """A session this replica runs (404 otherwise)."""
        try:
            return self.sessions[session_id]
        except KeyError:
            raise ApiError(404, "not_found", f"unknown session {session_id!r}") from None

    async def remote_summary(self, session_id: str) -> dict | None:
        """A session another gateway replica runs, as it last published it (None without Redis)."""
        if self.live is None:
            return None
        try:
            return await self.live.summary(session_id)
        except (RedisError, OSError):
            return None

    async def summary(self, session_id: str) -> dict:
        """A session's summary, from this replica or the one that runs it (404 when none does)."""
        if session_id in self.sessions:
            return self.sessions[session_id].summary()
        remote = await self.remote_summary(session_id)
        if remote is None:
            raise ApiError(404, "not_found", f"unknown session {session_id!r}")
        return remote

    async def video_sets(self) -> dict[str, VideoSet]:
        """YAML files in VIDEO_SETS_DIR, then the sets stored over REST (a file wins a name)."""
        sets = await asyncio.to_thread(self.catalog.all)
        for name, doc in (await self.store.video_set_docs()).items():
            if name not in sets:
                with contextlib.suppress(ValueError):
                    sets[name] = parse_video_set(doc, self.catalog.directory / f"{name}.yaml")
        return sets

    async def video_set(self, name: str) -> VideoSet:
        sets = await self.video_sets()
        if name not in sets:
            raise NotFoundError(f"unknown video set {name!r}")
        return sets[name]

    def parse_and_check(self, doc: dict) -> VideoSet:
        """Validate a video set and its sources: files inside SOURCE_DIRS (default VIDEO_SETS_DIR), URLs with an
        allowed scheme only (no ``file://``, no path traversal)."""
        vs = parse_video_set(doc, self.catalog.directory / f"{doc.get('name', 'unnamed')}.yaml")
        check_sources(vs, self.settings)
        return vs

    def start_session(self, session: Session) -> None:
        self.sessions[session.id] = session
        session.start()
        self.tasks.add(task := asyncio.create_task(self.finish_session(session), name=f"finish-{session.id}"))
        task.add_done_callback(self.tasks.discard)

    async def resume_always_on(self) -> None:
        """Start again the always-on sessions that no gateway runs any more (their heartbeat is older than
        ``SESSION_HEARTBEAT_S`` × 3, or was cleared by a gateway that shut down cleanly)."""
        for row in await self.store.claim_stale_always_on(self.settings.session_heartbeat_s * 3):
            if row.session_id in self.sessions and not self.sessions[row.session_id].done.is_set():
                continue  # ours, its heartbeat only delayed (the claim has renewed it)
            try:
                vs = await self.video_set(row.video_set)
                await asyncio.to_thread(check_sources, vs, self.settings)
                # A file source starts again at its first frame: its media clock continues after the history
                # already stored (the dead replica's, its spool replayed first), so no key is reused.
                last_ns = await self.store.last_point_ns(row.session_id)
                start_ns = row.media_start_ns if last_ns is None else max(row.media_start_ns, last_ns + 1_000_000_000)
                opts = row.options | {"media_start_ns": start_ns}
                session = Session(
                    vs, row.cameras, opts, self.settings, self.clients, self.history, self.live, row.session_id
                )
            except (NotFoundError, ValueError) as exc:
                log.warning("cannot resume always-on session %s: %s", row.session_id, exc)
                continue
            log.info("resuming always-on session %s (%s)", row.session_id, row.video_set)
            self.start_session(session)

    async def replay_dead_spools(self) -> int:
        """Write the history left in the spools of dead gateways (siblings of ours: a shared volume); rows they
        had not spooled yet (one flush interval) are lost. Returns the track points newly stored."""
        own = self.settings.spool_directory
        if own is None or self.history is None:
            return 0
        return await replay_orphans(own.parent, own, self.history)

    async def _takeover(self) -> None:
        """Every SESSION_TAKEOVER_S: replay dead gateways' spools, then resume the always-on sessions whose
        heartbeat stopped (``claim_stale_always_on``: FOR UPDATE SKIP LOCKED, so one survivor takes each)."""
        while True:
            await asyncio.sleep(self.settings.session_takeover_s)
            if self.shutting_down:
                return
            try:
                await self.replay_dead_spools()
                await self.resume_always_on()
            except (psycopg.Error, OSError, PoolTimeout) as exc:
                log.warning("takeover pass failed (will retry): %s", exc)

    async def purge(self, session_id: str) -> int:
        """Delete everything stored about a session (privacy): history, events, alerts, persons, rollups, the
        session row, and reid's gallery (embeddings never leave reid_svc)."""
        if self.history is not None:
            await self.history.drop_session(session_id)
        deleted = await self.store.purge(session_id)
        _, reid = await self.clients.reid_for(session_id)
        reply = await reid.PurgeHistory(
            reid_pb2.PurgeHistoryRequest(session_id=session_id), timeout=10, metadata=self.clients.metadata
        )
        deleted += reply.galleries_deleted + reply.corrections_deleted
        return deleted

    async def expire_history(self) -> int:
        """Delete history older than HISTORY_RETENTION_DAYS (0 = keep forever): the gateway's tables here, reid's
        (galleries, identity corrections) through its ``PurgeHistory``; returns the rows deleted."""
        days = self.settings.history_retention_days
        if days <= 0:
            return 0
        deleted = await self.store.expire_history(days)
        reply = await self.clients.reid.PurgeHistory(
            reid_pb2.PurgeHistoryRequest(older_than_s=days * 86400.0),
            timeout=self.settings.rpc_timeout_s,
            metadata=self.clients.metadata,
        )
        deleted += reply.galleries_deleted + reply.corrections_deleted
        if deleted:
            log.info(
                "retention: deleted %d rows older than %s days (reid: %d galleries, %d corrections)",
                deleted,
                days,
                reply.galleries_deleted,
                reply.corrections_deleted,
            )
        return deleted

    async def _retention(self) -> None:
        while True:
            try:
                await self.expire_history()
            except (psycopg.Error, OSError, PoolTimeout, grpc.aio.AioRpcError) as exc:
                log.warning("retention pass failed (will retry): %s", exc)
            await asyncio.sleep(self.settings.history_retention_check_s)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_heartbeat_s)
            running = [s.id for s in self.sessions.values() if not s.done.is_set()]
            if running:
                with contextlib.suppress(psycopg.Error, OSError, PoolTimeout):
                    await self.store.heartbeat(running)

    async def finish_session(self, s: Session) -> None:
        """Record a session's end once it is done; an always-on one stopped by a shutdown is left to resume."""
        await s.done.wait()
        if self.shutting_down and s.options.get("always_on"):
            with contextlib.suppress(psycopg.Error, OSError, PoolTimeout):
                await self.store.release_session(s.id)
            return
        try:
            await self.store.finish_session(s)
        except psycopg.Error as exc:
            log.warning("could not record the end of session %s: %s", s.id, exc)
