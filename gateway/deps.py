"""The routes' dependencies: typed accessors for the gateway's state, the API-key check every guarded router
mounts, and the analytics time range. All ``async``: FastAPI would run a plain ``def`` in its thread pool."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, WebSocketException
from starlette.requests import HTTPConnection

from gateway.config import GatewaySettings
from gateway.errors import ApiError
from gateway.state import Gateway
from spoton.bootstrap.settings import key_matches
from spoton.v1 import analytics_pb2

KEY_HINT = "missing or invalid API key (X-API-Key header or ?api_key=)"


async def get_gateway(conn: HTTPConnection) -> Gateway:
    """The app's shared state (``create_app`` puts it on ``app.state``), for HTTP routes and WebSockets alike."""
    return conn.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_settings(gw: GatewayDep) -> GatewaySettings:
    return gw.settings


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


async def require_key(conn: HTTPConnection, settings: SettingsDep) -> None:
    """With API_KEYS set, the caller's key (``X-API-Key`` header or ``?api_key=``) must be one of them (DESIGN §3).

    HTTP gets a 401 error body; a WebSocket is closed with 4401 before it is accepted.
    """
    keys = settings.api_key_set
    if not keys or key_matches(conn.headers.get("x-api-key") or conn.query_params.get("api_key"), keys):
        return
    if conn.scope["type"] == "websocket":
        raise WebSocketException(code=4401, reason="missing or invalid API key")
    raise ApiError(401, "unauthenticated", KEY_HINT)


Authenticated = Depends(require_key)


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
    return int(dt.timestamp() * 1e9)


async def time_range(session_id: str = "", start: str | None = None, end: str | None = None) -> analytics_pb2.TimeRange:
    """The session and ISO-8601 range every analytics route takes."""
    if not session_id:
        raise ApiError(400, "invalid_argument", "session_id is required")
    return analytics_pb2.TimeRange(
        session_id=session_id, start_ns=parse_time(start, "start"), end_ns=parse_time(end, "end")
    )


Span = Annotated[analytics_pb2.TimeRange, Depends(time_range)]
