"""A session's fan-out: its WebSocket subscribers on this replica, Redis for the other replicas, and the alert
webhook. Nothing here ever blocks the pipeline: a slow subscriber loses its oldest message, Redis publishing is
queued (``gateway.live``), webhooks are posted from their own tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from gateway.live import RedisLive
from spoton.bootstrap.logs import log_event

log = logging.getLogger("gateway.fanout")

SUBSCRIBER_QUEUE = 256
WEBHOOK_TIMEOUT_S = 5.0


def put_dropping_oldest(q: asyncio.Queue, message: dict) -> None:
    """Queue ``message``; a full queue loses its oldest message instead."""
    if q.full():
        q.get_nowait()
    q.put_nowait(message)


class Fanout:
    """Where one session's messages go."""

    def __init__(self, session_id: str, live: RedisLive | None, webhook_url: str = "") -> None:
        self.session_id = session_id
        self.live = live
        self.webhook_url = webhook_url
        self.subscribers: set[asyncio.Queue] = set()
        self.event_subscribers: set[asyncio.Queue] = set()
        self.webhook_failures = 0
        self._webhook_tasks: set[asyncio.Task] = set()

    def subscribe(self, events: bool = False) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        (self.event_subscribers if events else self.subscribers).add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)
        self.event_subscribers.discard(q)

    def summary(self, make: Callable[[], dict]) -> None:
        """Share the session's summary with the other replicas (``make`` is only called when there are some)."""
        if self.live is not None:
            self.live.set_summary(self.session_id, make())

    def step(self, message: dict) -> None:
        """A step message, to the tracking subscribers."""
        for q in list(self.subscribers):
            put_dropping_oldest(q, message)
        if self.live is not None:
            self.live.publish(self.session_id, "tracking", message)

    def identity_update(self, changes: list[dict]) -> None:
        """IDs already sent that changed (DESIGN §3 ``identity_update``), to the tracking subscribers. Each change:
        ``{"camera_id", "track_id", "from_global_id", "to_global_id", "since": ISO-8601, "reason":
        "settled"|"merge"|"split"}``; clients relabel what they show from ``since`` on."""
        if changes:
            self.step({"type": "identity_update", "session_id": self.session_id, "changes": changes})

    def event(self, message: dict) -> None:
        """A zone event or alert, to the event subscribers."""
        for q in list(self.event_subscribers):
            put_dropping_oldest(q, message)
        if self.live is not None:
            self.live.publish(self.session_id, "events", message)

    def ended(self, message: dict, make_summary: Callable[[], dict]) -> None:
        """The ``session_ended`` message, to every subscriber, and the final summary."""
        for q in list(self.subscribers) + list(self.event_subscribers):
            put_dropping_oldest(q, message)
        if self.live is not None:
            self.live.set_summary(self.session_id, make_summary())
            self.live.publish(self.session_id, "tracking", message)
            self.live.publish(self.session_id, "events", message)

    def alert(self, message: dict) -> None:
        """An alert: to the event subscribers, and POSTed to the webhook when one is set."""
        self.event(message)
        if self.webhook_url:
            task = asyncio.create_task(self._post_webhook(message))
            self._webhook_tasks.add(task)
            task.add_done_callback(self._webhook_tasks.discard)

    async def _post_webhook(self, message: dict) -> None:
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
                r = await client.post(self.webhook_url, json=message)
                r.raise_for_status()
        except httpx.HTTPError as exc:
            self.webhook_failures += 1
            log_event(log, "alert webhook failed", level=logging.WARNING, session_id=self.session_id, error=str(exc))
