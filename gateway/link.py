"""A stage's bidirectional gRPC stream that reopens itself, and the loop that drives one stream per step."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
# gRPC core's own wording when a peer's process dies mid-stream and the transport, not the peer, ends the call
# with INTERNAL (seen when mapping was SIGKILLed under load): a lost connection, not a stage's error.
TRANSPORT_INTERNAL = ("Internal error from Core", "RST_STREAM")


def retryable(exc: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call means the stage went away (reopen the stream) rather than refused the request."""
    code = exc.code()
    details = exc.details() or ""
    return code in RETRYABLE or (
        code == grpc.StatusCode.INTERNAL and any(text in details for text in TRANSPORT_INTERNAL)
    )


FIRST_RETRY_S = 0.2
MAX_RETRY_S = 2.0


class StageGoneError(ConnectionError):
    """A stage's stream ended without an error status (its process drained or went away)."""


class StageLink:
    """One stage's bidirectional stream that reopens itself when the stage goes away.

    A request whose reply never came is sent again on the new stream (every stage's reply is a function of the
    request and the stream's state, so nothing is lost or doubled); a stage away for longer than ``timeout_s``
    fails the session with the last error. ``generation`` counts the reconnections.

    Args:
        name: the stage, for logs and metrics.
        open_call: opens the stream (and sends its start message, if any); returns the call.
        timeout_s: how long the stage may stay away.
        on_reconnect: ``(name, error)``, told once per outage.
        on_failure: awaited after each failed attempt (e.g. refresh the replica list), optional.
    """

    def __init__(
        self,
        name: str,
        open_call: Callable[[], Awaitable[Any]],
        timeout_s: float,
        on_reconnect: Callable[[str, str], None],
        on_failure: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._open = open_call
        self._timeout_s = timeout_s
        self._on_reconnect = on_reconnect
        self._on_failure = on_failure
        self._call: Any = None
        self.generation = 0

    async def exchange(self, request: Any) -> Any:
        """Send one request and return its reply, reopening the stream (and re-sending) while the stage is away."""
        deadline: float | None = None
        delay = FIRST_RETRY_S
        while True:
            try:
                if self._call is None:
                    self._call = await self._open()
                await self._call.write(request)
                reply = await self._call.read()
                if reply is grpc.aio.EOF:
                    raise StageGoneError(f"{self.name} stream ended early")
                return reply
            except (grpc.aio.AioRpcError, StageGoneError, asyncio.InvalidStateError, ConnectionError) as exc:
                if isinstance(exc, grpc.aio.AioRpcError) and not retryable(exc):
                    raise
                self.cancel()
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout_s
                    self.generation += 1
                    detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                    self._on_reconnect(self.name, detail or type(exc).__name__)
                elif now > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
                if self._on_failure is not None:
                    with contextlib.suppress(ConnectionError):
                        await self._on_failure()

    async def close(self) -> None:
        if self._call is not None:
            await self._call.done_writing()

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None


async def drive(
    link: StageLink,
    inp: asyncio.Queue,
    out: asyncio.Queue,
    request: Callable[[Any], Any],
    merge: Callable[[Any, Any], Any],
    final: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """One request per step in, its reply merged into the step, the step out, in order; ``None`` ends the stream.
    The stage's round trip is recorded in ``work.stage_ms[link.name]``. A step whose ``request`` is None has
    nothing for the stage (e.g. no camera detected this step): it passes on without a call and ``merge(work, None)``.
    ``final`` (optional) runs after the last step, before the stream closes; what it returns passes on too."""
    try:
        while (work := await inp.get()) is not None:
            t0 = time.perf_counter()
            req = request(work)
            merge(work, None if req is None else await link.exchange(req))
            work.stage_ms[link.name] = (time.perf_counter() - t0) * 1000
            await out.put(work)
        if final is not None and (last := await final()) is not None:
            await out.put(last)
        await link.close()
    finally:
        link.cancel()
    await out.put(None)
