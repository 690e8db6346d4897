"""The routes' dependencies: typed accessors for the gateway's state, authentication and the role checks the
routers mount (viewer < operator < admin), and the analytics time range. All ``async``: FastAPI would run a
plain ``def`` in its thread pool."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, WebSocketException
from starlette.requests import HTTPConnection

from gateway.auth import AuthError, Principal, Role
from gateway.errors import ApiError
from gateway.state import Gateway
from spoton.timeutil import dt_to_ns
from spoton.v1 import analytics_pb2


async def get_gateway(conn: HTTPConnection) -> Gateway:
    """The app's shared state (``create_app`` puts it on ``app.state``), for HTTP routes and WebSockets alike."""
    return conn.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


KEY_HINT = "X-API-Key header, Authorization: Bearer <JWT>, a WebSocket ?ticket= or a signed URL"


def deny(conn: HTTPConnection, status: int, message: str) -> Exception:
    """401/403 as the error body for HTTP; for a WebSocket a close (4401/4403) before it is accepted."""
    if conn.scope["type"] == "websocket":
        return WebSocketException(code=4000 + status, reason=message[:120])
    return ApiError(status, "unauthenticated" if status == 401 else "forbidden", message)


async def authenticate(conn: HTTPConnection, gw: GatewayDep) -> Principal:
    """Who is calling (DESIGN section 3): ``X-API-Key``, ``Authorization: Bearer``, a single-use ``?ticket=``
    (WebSockets only) or a signed URL (``exp``/``role``/``sig``, GET of image and MJPEG paths only). No long-lived
    secret is read from a URL: ``?api_key=`` is refused. FastAPI runs this once per request however many
    dependencies use it, so a ticket is redeemed once."""
    auth = gw.auth
    if not gw.settings.auth:
        return Principal("anonymous", Role.ADMIN, "auth-off")
    q = conn.query_params
    try:
        if key := conn.headers.get("x-api-key"):
            return await auth.by_key(key)
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return await auth.jwt.verify(token.strip())
        if conn.scope["type"] == "websocket" and q.get("ticket"):
            return await auth.tickets.redeem(q["ticket"])
        if conn.scope["type"] == "http" and conn.scope["method"] in ("GET", "HEAD") and q.get("sig"):
            role = auth.signer.verify(conn.url.path, q.get("exp", ""), q.get("role", ""), q["sig"])
            return Principal("signed-url", role, "signed-url")
    except AuthError as exc:
        raise deny(conn, 401, str(exc)) from None
    if "api_key" in q:
        raise deny(conn, 401, "?api_key= is not accepted (keys never go in URLs): send X-API-Key")
    raise deny(conn, 401, f"authentication required: {KEY_HINT}")


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(role: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets ``role`` and above through (403 below it)."""

    async def check(conn: HTTPConnection, principal: PrincipalDep) -> Principal:
        if principal.role < role:
            raise deny(conn, 403, f"needs the {role.label} role (you are {principal.role.label})")
        return principal

    check.__name__ = f"require_{role.label}"
    return check


Viewer = Depends(require(Role.VIEWER))
Operator = Depends(require(Role.OPERATOR))
Admin = Depends(require(Role.ADMIN))


def parse_time(value: str | None, name: str) -> int:
    """ISO-8601 -> Unix ns (0 when absent)."""
    if not value:
        return 0
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_argument", f"{name} must be ISO-8601, got {value!r}") from None
    if dt.tzinfo is None:
        raise ApiError(400, "invalid_argument", f"{name} needs a timezone (e.g. Z)")
    return dt_to_ns(dt)  # exact (float seconds would be off by a microsecond now and then)


async def time_range(session_id: str = "", start: str | None = None, end: str | None = None) -> analytics_pb2.TimeRange:
    """The session and ISO-8601 range every analytics route takes."""
    if not session_id:
        raise ApiError(400, "invalid_argument", "session_id is required")
    return analytics_pb2.TimeRange(
        session_id=session_id, start_ns=parse_time(start, "start"), end_ns=parse_time(end, "end")
    )


Span = Annotated[analytics_pb2.TimeRange, Depends(time_range)]
