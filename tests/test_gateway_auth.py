"""Gateway API keys (DESIGN §3) and its /metrics endpoint, on an app instance with API_KEYS set."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.app import create_app
from gateway.config import GatewaySettings
from spoton.launcher import Stack


@pytest.fixture(scope="module")
def client(stack, database_url, demo_dir):  # type: ignore[no-untyped-def]
    settings = GatewaySettings(
        api_keys="k1,k2",
        database_url=database_url,
        video_sets_dir=str(demo_dir),
        detection_svc_addr=stack.addr("detection"),
        tracking_svc_addr=stack.addr("tracking"),
        reid_svc_addr=stack.addr("reid"),
        mapping_svc_addr=stack.addr("mapping"),
        analytics_svc_addr=stack.addr("analytics"),
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_open_paths_need_no_key(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/health").status_code == 200
    metrics = client.get("/metrics/")
    assert metrics.status_code == 200 and "spoton_gateway_stage_seconds" in metrics.text
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/sessions/", "/api/v1/video-sets/", "/api/v1/video-sets/demo/floor"])
def test_api_needs_a_valid_key(client, path: str) -> None:  # type: ignore[no-untyped-def]
    denied = client.get(path)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthenticated"
    assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get(path, headers={"X-API-Key": "k2"}).status_code == 200
    assert client.get(path, params={"api_key": "k1"}).status_code == 200


def test_websocket_needs_a_key(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/tracking/nope") as ws:
        ws.receive_json()
    assert closed.value.code == 4401
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/events/nope?api_key=k1") as ws:
        ws.receive_json()
    assert closed.value.code == 4404  # the key was accepted; the session is unknown


@pytest.mark.parametrize("path", ["/ws/tracking/nope", "/ws/events/nope", "/ws/tracking/nope?api_key=wrong"])
def test_websocket_key_is_checked_before_accept(client, path: str) -> None:  # type: ignore[no-untyped-def]
    """Without a valid key the socket is closed (4401) in the handshake itself: it is never accepted."""
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path):
        pytest.fail("accepted without a valid key")
    assert refused.value.code == 4401


def test_real_gateway_refuses_the_websocket_handshake_without_a_key(stack: Stack) -> None:
    """uvicorn turns a close before accept into an HTTP 403 handshake answer; with the key the socket opens."""
    url = stack.start_gateway("gateway-ws-auth", {"API_KEYS": "ws-key"})
    ws = url.replace("http://", "ws://") + "/ws/tracking/nope"

    async def handshake(target: str) -> int:
        try:
            async with websockets.connect(target) as conn:
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    await conn.recv()
                return closed.value.rcvd.code
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    try:
        assert asyncio.run(handshake(ws)) == 403
        assert asyncio.run(handshake(ws + "?api_key=wrong")) == 403
        assert asyncio.run(handshake(ws + "?api_key=ws-key")) == 4404  # accepted; the session is unknown
    finally:
        stack.procs.pop("gateway-ws-auth").terminate()
