"""Live WebSockets: a session's steps (``/ws/tracking``) or its zone events and alerts (``/ws/events``), from
this replica or, through Redis, from the replica that runs it. The router's auth dependency runs before
``accept()``."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from gateway.deps import GatewayDep
from gateway.state import Gateway

router = APIRouter(prefix="/ws")


@router.websocket("/tracking/{session_id}")
async def ws_tracking(websocket: WebSocket, session_id: str, gw: GatewayDep, global_id: int | None = None) -> None:
    await relay(gw, websocket, session_id, False, global_id)


@router.websocket("/events/{session_id}")
async def ws_events(websocket: WebSocket, session_id: str, gw: GatewayDep) -> None:
    await relay(gw, websocket, session_id, True)


async def relay(gw: Gateway, websocket: WebSocket, session_id: str, events: bool, global_id: int | None = None) -> None:
    """Send a session's live messages (steps, or zone events and alerts) until it ends or the client goes."""
    session = gw.sessions.get(session_id)
    await websocket.accept()
    if session is None:
        if await gw.remote_summary(session_id) is None:
            await websocket.close(code=4404, reason=f"unknown session {session_id}")
        else:
            await relay_remote(gw, websocket, session_id, events, global_id)
        return
    subscribers = session.event_subscribers if events else session.subscribers
    if len(subscribers) >= gw.settings.max_ws_clients_per_session:
        await websocket.close(code=4429, reason="too many WebSocket clients for this session")
        return
    queue = session.subscribe(events=events)
    try:
        if session.done.is_set():
            await websocket.send_json(session.ended_message())
            return
        while True:
            message = await queue.get()
            if global_id is not None and message.get("type") == "step":
                message = filter_person(message, global_id)
            await websocket.send_json(message)
            if message.get("type") == "session_ended":
                break
    except WebSocketDisconnect:
        pass
    finally:
        session.unsubscribe(queue)
        with contextlib.suppress(RuntimeError):
            await websocket.close()


async def relay_remote(gw: Gateway, websocket: WebSocket, session_id: str, events: bool, global_id: int | None) -> None:
    """Relay a session that another replica runs, from its Redis channel."""
    try:
        async for message in gw.live.follow(session_id, "events" if events else "tracking"):
            if global_id is not None and message.get("type") == "step":
                message = filter_person(message, global_id)
            await websocket.send_json(message)
            if message.get("type") == "session_ended":
                break
    except (WebSocketDisconnect, RedisError, OSError):
        pass
    finally:
        with contextlib.suppress(RuntimeError):
            await websocket.close()


def filter_person(message: dict, global_id: int) -> dict:
    """A step message with only ``global_id``'s tracks left in each camera."""
    cams = {
        c: {**v, "tracks": [t for t in v["tracks"] if t["global_id"] == global_id]}
        for c, v in message["cameras"].items()
    }
    return {**message, "cameras": cams}
