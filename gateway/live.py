"""Live fan-out between gateway replicas through Redis (DESIGN §8).

The replica that runs a session publishes every step and event on ``spoton:live:{session}:{kind}`` and keeps the
latest step and the session's summary under keys, so any replica can serve any WebSocket or REST client. The
pipeline never waits on Redis: messages go through a bounded queue to one publisher task, and what cannot be
sent (Redis away, queue full) is dropped and counted. Without ``REDIS_URL`` everything stays in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.messages import session_ended_from_summary
from spoton.bootstrap.logs import log_event

log = logging.getLogger("gateway.live")

PREFIX = "spoton:live"
KEY_TTL_S = 24 * 3600
QUEUE_DEPTH = 1024


def channel(session_id: str, kind: str) -> str:
    return f"{PREFIX}:{session_id}:{kind}"


class RedisLive:
    """Publisher and reader of one gateway's live state in Redis."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)
        self.dropped = 0
        self.connected = False
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_DEPTH)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.ping()
        self._task = asyncio.create_task(self._publisher(), name="redis-live-publisher")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    async def ping(self) -> bool:
        try:
            self.connected = bool(await self.client.ping())
        except (RedisError, OSError):
            self.connected = False
        return self.connected

    # ---- writing (the replica that runs the session) -----------------------------------------------------------
    def publish(self, session_id: str, kind: str, message: dict) -> None:
        """Queue a message for every replica's subscribers; never blocks."""
        self._put(("publish", session_id, kind, message))

    def set_summary(self, session_id: str, summary: dict) -> None:
        self._put(("summary", session_id, "", summary))

    async def announce(self, session_id: str, summary: dict) -> None:
        """Write a new session's summary now, so another replica knows it as soon as its id is returned."""
        await self._write("summary", session_id, "", summary)

    def _put(self, item: tuple) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    async def _publisher(self) -> None:
        while True:
            await self._write(*await self._queue.get())

    async def _write(self, op: str, sid: str, kind: str, message: dict) -> None:
        try:
            text = json.dumps(message, default=str)
            async with self.client.pipeline(transaction=False) as pipe:
                if op == "publish":
                    pipe.publish(channel(sid, kind), text)
                    if message.get("type") == "step":
                        pipe.set(f"{PREFIX}:{sid}:latest", text, ex=KEY_TTL_S)
                else:
                    pipe.set(f"{PREFIX}:{sid}:summary", text, ex=KEY_TTL_S)
                    pipe.zadd(f"{PREFIX}:sessions", {sid: float(message.get("created_at", 0))})
                await pipe.execute()
            self.connected = True
        except (RedisError, OSError) as exc:
            self.dropped += 1
            if self.connected:
                log_event(log, "redis unavailable; live fan-out degraded", level=logging.WARNING, error=str(exc))
            self.connected = False

    # ---- reading (any replica) ------------------------------------------------------------------------------------
    async def latest(self, session_id: str) -> dict | None:
        text = await self.client.get(f"{PREFIX}:{session_id}:latest")
        return json.loads(text) if text else None

    async def summary(self, session_id: str) -> dict | None:
        text = await self.client.get(f"{PREFIX}:{session_id}:summary")
        return json.loads(text) if text else None

    async def summaries(self, limit: int = 200) -> list[dict]:
        ids = await self.client.zrevrange(f"{PREFIX}:sessions", 0, limit - 1)
        if not ids:
            return []
        texts = await self.client.mget([f"{PREFIX}:{sid}:summary" for sid in ids])
        return [json.loads(t) for t in texts if t]

    async def follow(self, session_id: str, kind: str) -> AsyncIterator[dict]:
        """The session's messages of ``kind`` as they are published (a slow reader loses the oldest)."""
        buffer: asyncio.Queue = asyncio.Queue(256)
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel(session_id, kind))

        async def pump() -> None:
            async for raw in pubsub.listen():
                if raw.get("type") != "message":
                    continue
                if buffer.full():
                    buffer.get_nowait()
                buffer.put_nowait(json.loads(raw["data"]))

        task = asyncio.create_task(pump())
        try:
            # The session may have ended between the caller's summary check and the subscription.
            summary = await self.summary(session_id)
            if summary and summary.get("status") not in ("starting", "running"):
                yield session_ended_from_summary(session_id, summary)
                return
            while True:
                if task.done():
                    task.result()
                yield await buffer.get()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await task
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
