"""Map domain exceptions to gRPC status codes in one place (CONVENTIONS §4)."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable

import grpc

try:  # only the services that keep data have the PostgreSQL driver
    import psycopg
    from psycopg_pool import PoolTimeout
except ImportError:  # pragma: no cover - detection and tracking images
    psycopg = None

log = logging.getLogger("spoton.errors")


class NotFoundError(KeyError):
    """An unknown id (session, camera, person, calibration)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class PreconditionError(RuntimeError):
    """The call is valid but the system is not in a state to answer it (e.g. missing calibration)."""


class UnavailableError(RuntimeError):
    """Overloaded or not ready yet; the client may retry."""


def status_for(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, NotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, PreconditionError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, UnavailableError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, (ValueError, TypeError)):
        return grpc.StatusCode.INVALID_ARGUMENT
    if psycopg is not None:
        if isinstance(exc, psycopg.DataError):  # what the client sent cannot be stored (NUL bytes, out of range)
            return grpc.StatusCode.INVALID_ARGUMENT
        if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):  # the database is away
            return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error", exc_info=exc)
    await context.abort(code, str(exc) or type(exc).__name__)


def unary_errors(fn: Callable) -> Callable:
    """Decorate a unary servicer method: domain exceptions -> status codes."""

    @functools.wraps(fn)
    async def wrapper(self, request, context):  # type: ignore[no-untyped-def]
        try:
            return await fn(self, request, context)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception as exc:
            await abort_with(context, exc)

    return wrapper


def stream_errors(fn: Callable[..., AsyncIterator]) -> Callable[..., AsyncIterator]:
    """Decorate a streaming servicer method: domain exceptions -> status codes."""

    @functools.wraps(fn)
    async def wrapper(self, request, context):  # type: ignore[no-untyped-def]
        try:
            async for item in fn(self, request, context):
                yield item
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception as exc:
            await abort_with(context, exc)

    return wrapper
