"""Auth routes (DESIGN section 3): who am I, WebSocket tickets, signed image/MJPEG URLs (any role) and API key
management (admin). Keys are shown once, when created; only their SHA-256 is stored."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from gateway.auth import Role
from gateway.deps import Admin, GatewayDep, PrincipalDep
from gateway.errors import ApiError

router = APIRouter(prefix="/api/v1/auth")


class SignBody(BaseModel):
    path: str = Field(description="an image or MJPEG path under /api/v1/, without its query")


class KeyBody(BaseModel):
    name: str = Field("", max_length=200)
    role: str = "viewer"


@router.get("/me")
async def me(principal: PrincipalDep) -> dict:
    """The caller's role (the dashboard hides the controls a viewer may not use)."""
    return {"subject": principal.subject, "role": principal.role.label, "via": principal.via}


@router.post("/ticket")
async def ticket(principal: PrincipalDep, gw: GatewayDep) -> dict:
    """A single-use WebSocket ticket (``/ws/...?ticket=``) with the caller's role, valid WS_TICKET_TTL_S."""
    try:
        issued = await gw.auth.tickets.issue(principal)
    except (RedisError, OSError) as exc:
        raise ApiError(503, "unavailable", f"ticket store (Redis) unavailable: {exc}") from None
    return {"ticket": issued, "expires_in_s": gw.settings.ws_ticket_ttl_s}


@router.post("/sign")
async def sign(body: SignBody, principal: PrincipalDep, gw: GatewayDep) -> dict:
    """``path`` plus ``exp``, ``role`` and ``sig``: a URL an ``<img>`` can load until it expires (SIGNED_URL_TTL_S);
    add the route's own parameters after it."""
    try:
        params = gw.auth.signer.sign(body.path, principal.role)
    except ValueError as exc:
        raise ApiError(400, "invalid_argument", str(exc)) from None
    return {"url": f"{body.path}?{urlencode(params)}", "expires_at": int(params["exp"])}


@router.get("/keys", dependencies=[Admin])
async def list_keys(gw: GatewayDep) -> dict:
    """Stored keys (ids, names, roles, dates; never the keys). ``API_KEYS`` keys are not listed."""
    return {"keys": [k.public() for k in await gw.auth.keys.list()]}


@router.post("/keys", status_code=201, dependencies=[Admin])
async def create_key(body: KeyBody, gw: GatewayDep) -> dict:
    """A new key: the answer is the only time it is shown."""
    try:
        role = Role.parse(body.role)
    except ValueError as exc:
        raise ApiError(400, "invalid_argument", str(exc)) from None
    stored, key = await gw.auth.keys.create(body.name, role)
    return stored.public() | {"key": key}


@router.delete("/keys/{key_id}", dependencies=[Admin])
async def revoke_key(key_id: str, gw: GatewayDep) -> dict:
    stored = await gw.auth.keys.revoke(key_id)
    if stored is None:
        raise ApiError(404, "not_found", f"unknown key {key_id!r}")
    return stored.public()
