"""Gateway auth (DESIGN §3): roles by API key and by JWT (HS256 and a JWKS on loopback), WebSocket tickets, signed
image URLs, key management, the first-start admin key, AUTH=off, redacted access logs and the stages' service key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import httpx
import jwt
import psycopg
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.app import create_app
from gateway.auth import AuthError, Principal, Role, Tickets, UrlSigner, parse_api_keys
from gateway.config import GatewaySettings
from gateway.live import RedisLive
from spoton.launcher import Stack
from spoton.v1 import mapping_pb2, mapping_pb2_grpc
from tests.conftest import ADMIN_KEY, AUTH, OPERATOR_KEY, SERVICE_KEY, VIEWER_KEY, fresh_database, gwapi

HS_SECRET = "hs256-test-secret-of-at-least-32-bytes!"
KEYS = {Role.VIEWER: VIEWER_KEY, Role.OPERATOR: OPERATOR_KEY, Role.ADMIN: ADMIN_KEY}
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Jwks:
    """An OIDC issuer's JWKS document served on loopback (what PyJWKClient fetches)."""

    def __init__(self) -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
        body = json.dumps({"keys": [jwk | {"kid": "test-kid", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    j = Jwks()
    yield j
    j.server.shutdown()


def token(role: str, kind: str, expires_in: float = 300, **claims) -> str:  # type: ignore[no-untyped-def]
    # OIDC-style claims: roles in a nested list (JWT_ROLE_CLAIM=realm_access.roles), the highest known one counts.
    body = {"sub": f"user-{role}", "exp": int(time.time() + expires_in), "iss": "https://idp.test"}
    body |= {"realm_access": {"roles": ["offline_access", role]}} | claims
    if kind == "hs256":
        return jwt.encode(body, HS_SECRET, algorithm="HS256")
    return jwt.encode(body, RSA_KEY, algorithm="RS256", headers={"kid": "test-kid"})


def creds(role: Role | None, kind: str) -> dict[str, str]:
    if role is None:
        return {}
    if kind == "key":
        return {"X-API-Key": KEYS[role]}
    return {"Authorization": f"Bearer {token(role.label, kind)}"}


@pytest.fixture(scope="module")
def client(stack, database_url, demo_dir, jwks) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = GatewaySettings(
        api_keys=stack.env["API_KEYS"],
        service_key=SERVICE_KEY,
        jwt_secret=HS_SECRET,
        jwt_jwks_url=jwks.url,
        jwt_issuer="https://idp.test",
        jwt_role_claim="realm_access.roles",
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


def test_role_claim_for_hs256_tokens_is_the_same_path(client: TestClient) -> None:
    """HS256 tokens carry the role where JWT_ROLE_CLAIM says (here realm_access.roles), as the issuer's do."""
    t = jwt.encode(
        {"sub": "u", "exp": int(time.time() + 60), "iss": "https://idp.test", "realm_access": {"roles": ["operator"]}},
        HS_SECRET,
        algorithm="HS256",
    )
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {t}"})
    assert me.status_code == 200 and me.json() == {"subject": "u", "role": "operator", "via": "jwt"}


# (method, path, body, the least role that may call it). Bodies are deliberately about unknown things: a caller
# with the role gets past auth and then a 4xx about the thing (404/400/422), never 401/403.
ROUTES = [
    ("GET", "/api/v1/", None, Role.VIEWER),
    ("GET", "/api/v1/sessions/", None, Role.VIEWER),
    ("GET", "/api/v1/video-sets/", None, Role.VIEWER),
    ("GET", "/api/v1/video-sets/demo/floor", None, Role.VIEWER),
    ("GET", "/api/v1/tracking/nope", None, Role.VIEWER),
    ("GET", "/api/v1/analytics/summary?session_id=nope", None, Role.VIEWER),
    ("GET", "/openapi.json", None, Role.VIEWER),
    ("POST", "/api/v1/auth/ticket", None, Role.VIEWER),
    ("POST", "/api/v1/sessions/", {"video_set": "no-such-set"}, Role.OPERATOR),
    ("DELETE", "/api/v1/sessions/nope", None, Role.OPERATOR),
    ("POST", "/api/v1/sessions/nope/pause", None, Role.OPERATOR),
    ("POST", "/api/v1/tracking/nope/persons/merge", {"into": 1, "from": 2}, Role.OPERATOR),
    ("PUT", "/api/v1/video-sets/nope/cameras/cam1/calibration", {"image_points": []}, Role.OPERATOR),
    ("POST", "/api/v1/video-sets/", {"name": "x"}, Role.ADMIN),
    ("DELETE", "/api/v1/video-sets/nope", None, Role.ADMIN),
    ("DELETE", "/api/v1/sessions/nope?purge=true", None, Role.ADMIN),
    ("GET", "/api/v1/auth/keys", None, Role.ADMIN),
    ("POST", "/api/v1/auth/keys", {"role": "nobody"}, Role.ADMIN),
]


@pytest.mark.parametrize("kind", ["key", "hs256", "jwks"])
@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN], ids=lambda r: r.label if r else "none")
def test_auth_matrix_rest(client: TestClient, kind: str, role: Role | None) -> None:
    """Each role x each route group: 401 without credentials, 403 below the route's role, through above it."""
    headers = creds(role, kind)
    for method, path, body, least in ROUTES:
        r = client.request(method, path, json=body, headers=headers)
        if role is None:
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated", (method, path)
        elif role < least:
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path, r.text)
        else:
            assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)


@pytest.mark.parametrize("kind", ["key", "hs256", "jwks", "ticket"])
@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN], ids=lambda r: r.label if r else "none")
@pytest.mark.parametrize("path", ["/ws/tracking/nope", "/ws/events/nope"])
def test_auth_matrix_websocket(client: TestClient, kind: str, role: Role | None, path: str) -> None:
    """Every role may open the WebSockets (by header or ticket); without credentials the handshake is refused
    (4401) before accept. 4404 means auth passed and the session is unknown."""
    headers, url = creds(role, "key" if kind == "ticket" else kind), path
    if kind == "ticket" and role is not None:
        url += "?ticket=" + client.post("/api/v1/auth/ticket", headers=headers).json()["ticket"]
        headers = {}
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url, headers=headers) as ws:
        ws.receive_json()
    assert closed.value.code == (4401 if role is None else 4404)


def test_open_paths_need_no_credentials(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    metrics = client.get("/metrics/")
    assert metrics.status_code == 200 and "spoton_gateway_stage_seconds" in metrics.text
    page = client.get("/")
    assert page.status_code == 200 and "sessionStorage" in page.text and "api_key" not in page.text


@pytest.mark.parametrize("bad", [{"X-API-Key": "wrong"}, {"Authorization": "Bearer not.a.jwt"}])
def test_bad_credentials_are_refused(client: TestClient, bad: dict[str, str]) -> None:
    r = client.get("/api/v1/sessions/", headers=bad)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_expired_or_foreign_tokens_are_refused(client: TestClient) -> None:
    expired = token("admin", "hs256", expires_in=-120)
    wrong_issuer = token("admin", "jwks", iss="https://evil.test")
    forged = jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time() + 60)}, "another-secret-32-bytes-long!!!!")
    no_role = token("nobody", "jwks")
    for t in (expired, wrong_issuer, forged, no_role):
        assert client.get("/api/v1/sessions/", headers={"Authorization": f"Bearer {t}"}).status_code == 401


def test_api_key_in_the_url_is_not_accepted(client: TestClient) -> None:
    r = client.get("/api/v1/sessions/", params={"api_key": ADMIN_KEY})
    assert r.status_code == 401 and "api_key" in r.json()["error"]["message"]
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/ws/tracking/nope?api_key={ADMIN_KEY}"),
    ):
        pytest.fail("accepted a key in the URL")
    assert closed.value.code == 4401


def test_tickets_are_single_use(client: TestClient) -> None:
    t = client.post("/api/v1/auth/ticket", headers={"X-API-Key": VIEWER_KEY}).json()["ticket"]
    with pytest.raises(WebSocketDisconnect) as first, client.websocket_connect(f"/ws/events/nope?ticket={t}") as ws:
        ws.receive_json()
    assert first.value.code == 4404  # accepted; the session is unknown
    with pytest.raises(WebSocketDisconnect) as again, client.websocket_connect(f"/ws/events/nope?ticket={t}"):
        pytest.fail("a ticket was accepted twice")
    assert again.value.code == 4401
    # A ticket opens WebSockets only, never REST.
    t2 = client.post("/api/v1/auth/ticket", headers={"X-API-Key": VIEWER_KEY}).json()["ticket"]
    assert client.get("/api/v1/sessions/", params={"ticket": t2}).status_code == 401


@pytest.mark.parametrize("redis_backed", [False, True], ids=["in-process", "redis"])
def test_tickets_expire_and_are_single_use_across_replicas(redis_backed: bool) -> None:
    async def run() -> None:
        live = RedisLive("redis://127.0.0.1:6379/0") if redis_backed else None
        try:
            a, b = Tickets(0.3, live), Tickets(0.3, live)
            p = Principal("k", Role.OPERATOR, "key")
            t = await a.issue(p)
            redeemed = await (b if redis_backed else a).redeem(t)  # another replica redeems it (Redis)
            assert redeemed.role == Role.OPERATOR and redeemed.via == "ticket"
            with pytest.raises(AuthError):
                await a.redeem(t)
            late = await a.issue(p)
            await asyncio.sleep(0.5)
            with pytest.raises(AuthError):
                await a.redeem(late)
        finally:
            if live is not None:
                await live.client.aclose()

    asyncio.run(run())


def test_signed_urls_open_one_path_for_a_while(client: TestClient) -> None:
    path = "/api/v1/analytics/heatmap.png"
    r = client.post("/api/v1/auth/sign", json={"path": path}, headers={"X-API-Key": VIEWER_KEY})
    assert r.status_code == 200
    url = r.json()["url"]
    assert "role=viewer" in url and ADMIN_KEY not in url and VIEWER_KEY not in url
    # Through auth (the session is unknown, so not 401/403) without any header.
    assert client.get(url + "&session_id=nope").status_code not in (401, 403)
    signer: UrlSigner = client.app.state.gateway.auth.signer
    params = signer.sign(path, Role.VIEWER)
    tampered = [
        params | {"sig": "0" * 64},
        params | {"role": "admin"},
        params | {"exp": str(int(params["exp"]) + 3600)},
        signer.sign(path, Role.VIEWER, now=time.time() - 2 * signer.ttl_s),  # expired
    ]
    for p in tampered:
        assert client.get(path, params=p | {"session_id": "nope"}).status_code == 401
    # Signed for one path, refused on another; and only image/MJPEG paths can be signed at all.
    other = "/api/v1/sessions/nope/cameras/cam1/stream.mjpeg"
    assert client.get(other, params=params).status_code == 401
    assert client.post("/api/v1/auth/sign", json={"path": "/api/v1/sessions/"}, headers=AUTH).status_code == 400
    # A signed URL opens GET only.
    assert client.post(path, params=params).status_code in (401, 405)


def test_signed_mjpeg_url_expires() -> None:
    signer = UrlSigner(b"k" * 32, ttl_s=60)
    path = "/api/v1/sessions/s1/cameras/cam1/stream.mjpeg"
    p = signer.sign(path, Role.VIEWER, now=1000.0)
    assert signer.verify(path, p["exp"], p["role"], p["sig"], now=1059.0) == Role.VIEWER
    with pytest.raises(AuthError, match="expired"):
        signer.verify(path, p["exp"], p["role"], p["sig"], now=1061.0)


def test_api_keys_syntax() -> None:
    keys = parse_api_keys("plain, v:viewer ,o:operator,with:colon:admin, odd:thing")
    roles = {k: keys[hashlib.sha256(k.encode()).hexdigest()] for k in ("plain", "v", "o", "with:colon", "odd:thing")}
    assert roles == {
        "plain": Role.ADMIN,
        "v": Role.VIEWER,
        "o": Role.OPERATOR,
        "with:colon": Role.ADMIN,
        "odd:thing": Role.ADMIN,
    }


def test_key_management(client: TestClient, database_url: str) -> None:
    created = client.post("/api/v1/auth/keys", json={"name": "wall screen", "role": "viewer"}, headers=AUTH)
    assert created.status_code == 201
    body = created.json()
    key, key_id = body["key"], body["key_id"]
    assert body["role"] == "viewer" and key.startswith("spk_")
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": key}).json()["role"] == "viewer"
    assert client.post("/api/v1/sessions/", json={}, headers={"X-API-Key": key}).status_code == 403
    listed = client.get("/api/v1/auth/keys", headers=AUTH).json()["keys"]
    assert key_id in [k["key_id"] for k in listed] and key not in json.dumps(listed)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE key_id = %s", (key_id,)).fetchone()
    assert hashlib.sha256(key.encode()).hexdigest() in row and key not in [str(v) for v in row]
    assert client.delete(f"/api/v1/auth/keys/{key_id}", headers=AUTH).json()["revoked_at"]
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 401
    assert client.delete("/api/v1/auth/keys/nope", headers=AUTH).status_code == 404


def test_cli_manages_keys(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from spoton.cli import main

    base = ["--url", stack.gateway_url, "--api-key", ADMIN_KEY]
    assert main([*base, "keys", "create", "--role", "operator", "--name", "cli"]) == 0
    key_id, _, rest = capsys.readouterr().out.partition(" ")
    key = rest.split(": ", 1)[1].split()[0]
    assert gwapi.get(f"{stack.gateway_url}/api/v1/auth/me", headers={"X-API-Key": key}).json()["role"] == "operator"
    assert main([*base, "keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and key not in listing
    assert main([*base, "keys", "revoke", key_id]) == 0
    assert gwapi.get(f"{stack.gateway_url}/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 401
    assert main(["--url", stack.gateway_url, "--api-key", VIEWER_KEY, "keys", "list"]) == 2


def test_real_gateway_refuses_the_websocket_handshake_without_credentials(stack: Stack) -> None:
    """uvicorn turns a close before accept into an HTTP 403 handshake answer; with a header or ticket it opens."""
    ws = stack.gateway_url.replace("http://", "ws://") + "/ws/tracking/nope"

    async def handshake(target: str, headers: dict[str, str] | None = None) -> int:
        try:
            async with websockets.connect(target, additional_headers=headers) as conn:
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    await conn.recv()
                return closed.value.rcvd.code
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    ticket = gwapi.post(f"{stack.gateway_url}/api/v1/auth/ticket", timeout=10).json()["ticket"]
    assert asyncio.run(handshake(ws)) == 403
    assert asyncio.run(handshake(ws + f"?api_key={ADMIN_KEY}")) == 403
    assert asyncio.run(handshake(ws, {"X-API-Key": VIEWER_KEY})) == 4404  # accepted; the session is unknown
    assert asyncio.run(handshake(ws + f"?ticket={ticket}")) == 4404
    assert asyncio.run(handshake(ws + f"?ticket={ticket}")) == 403  # used


def test_keys_tickets_and_signatures_never_reach_the_access_log(stack: Stack) -> None:
    """A real gateway process: after requests by header, ticket and signed URL (and a refused ?api_key=), its log
    has the request lines with their query strings redacted and none of the secrets."""
    url = stack.start_gateway("gateway-access-log", {"LOG_LEVEL": "INFO"})
    try:
        assert gwapi.get(f"{url}/api/v1/sessions/", timeout=10).status_code == 200
        assert httpx.get(f"{url}/api/v1/sessions/", params={"api_key": ADMIN_KEY}, timeout=10).status_code == 401
        signed = gwapi.post(f"{url}/api/v1/auth/sign", json={"path": "/api/v1/analytics/heatmap.png"}, timeout=10)
        sig_url = signed.json()["url"]
        assert httpx.get(f"{url}{sig_url}&session_id=nope", timeout=10).status_code not in (401, 403)
        ticket = gwapi.post(f"{url}/api/v1/auth/ticket", timeout=10).json()["ticket"]

        async def open_ws() -> None:
            ws = url.replace("http://", "ws://") + f"/ws/tracking/nope?ticket={ticket}"
            async with websockets.connect(ws) as conn:
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    await conn.recv()

        asyncio.run(open_ws())
        time.sleep(0.5)
    finally:
        stack.procs.pop("gateway-access-log").terminate()
    log = (stack.log_dir / "gateway-access-log.log").read_text(errors="replace")
    assert "GET /api/v1/sessions/ HTTP/1.1" in log and "/api/v1/analytics/heatmap.png?[redacted]" in log
    assert "/ws/tracking/nope?[redacted]" in log
    sig = sig_url.split("sig=")[1]
    for secret in (ADMIN_KEY, VIEWER_KEY, OPERATOR_KEY, SERVICE_KEY, ticket, sig):
        assert secret not in log


def test_first_start_creates_prints_and_hashes_one_admin_key(stack: Stack, database_url: str) -> None:
    """No keys configured: the first start prints an admin key once and stores only its hash; a restart prints
    none and the key still works."""
    with fresh_database(database_url, "spoton_firstkey") as db:
        env = {"API_KEYS": "", "DATABASE_URL": db}
        url = stack.start_gateway("gateway-first", env)
        try:
            assert httpx.get(f"{url}/api/v1/sessions/", timeout=10).status_code == 401
        finally:
            stack.procs.pop("gateway-first").terminate()
        log = (stack.log_dir / "gateway-first.log").read_text()
        lines = [line for line in log.splitlines() if "created an admin API key" in line]
        assert len(lines) == 1
        key = lines[0].split("stored hashed): ")[1].split()[0]
        with psycopg.connect(db) as conn:
            rows = conn.execute("SELECT role, key_hash FROM api_keys WHERE revoked_at IS NULL").fetchall()
        assert rows == [("admin", hashlib.sha256(key.encode()).hexdigest())]
        time.sleep(1)
        url = stack.start_gateway("gateway-first-again", env)
        try:
            me = httpx.get(f"{url}/api/v1/auth/me", headers={"X-API-Key": key}, timeout=10)
            assert me.status_code == 200 and me.json()["role"] == "admin"
        finally:
            stack.procs.pop("gateway-first-again").terminate()
        again = (stack.log_dir / "gateway-first-again.log").read_text()
        assert "created an admin API key" not in again and key not in again


def test_auth_off_is_explicit_and_warns(stack: Stack) -> None:
    url = stack.start_gateway("gateway-auth-off", {"AUTH": "off"})
    try:
        r = httpx.get(f"{url}/api/v1/auth/me", timeout=10)
        assert r.status_code == 200 and r.json()["via"] == "auth-off"
    finally:
        stack.procs.pop("gateway-auth-off").terminate()
    log = (stack.log_dir / "gateway-auth-off.log").read_text()
    assert "AUTH=off: authentication is DISABLED" in log


def test_stage_services_take_only_the_gateway_service_key(stack: Stack) -> None:
    """A client's API key (even admin) is not a stage credential; the service key is; health stays open."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(stack.addr("mapping")) as ch:
        stub = mapping_pb2_grpc.MappingServiceStub(ch)
        req = mapping_pb2.ListCalibrationsRequest()
        for metadata in ((), (("x-api-key", ADMIN_KEY),), (("x-api-key", "wrong"),)):
            with pytest.raises(grpc.RpcError) as denied:
                stub.ListCalibrations(req, metadata=metadata, timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.ListCalibrations(req, metadata=(("x-api-key", SERVICE_KEY),), timeout=10)
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
