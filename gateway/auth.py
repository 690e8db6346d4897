"""Who is calling (DESIGN §3 "Auth"): API keys (``API_KEYS`` and keys stored hashed in PostgreSQL), bearer JWTs
(HS256 secret or an OIDC issuer's JWKS), single-use WebSocket tickets and signed ``<img>`` URLs, and the roles
viewer < operator < admin. Pure logic plus the key table's SQL; the routes' dependencies live in ``gateway/deps.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import jwt
from psycopg.rows import dict_row
from redis.exceptions import RedisError

from gateway.config import GatewaySettings

if TYPE_CHECKING:
    from gateway.live import RedisLive
    from gateway.store import Store

log = logging.getLogger("gateway")

KEY_PREFIX = "spk_"
TICKET_PREFIX = "spoton:ticket:"
# GET paths an <img> (or a video tag) loads: the only ones a signed URL opens.
SIGNABLE = re.compile(r"^/api/v1/[A-Za-z0-9_./{}%-]+\.(mjpeg|png|jpg)$")


class Role(IntEnum):
    """viewer: reads, WebSockets, streams; operator: + sessions, corrections, calibration; admin: + video sets and
    sources, purge, keys."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r} (viewer, operator or admin)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who (key id, JWT subject), its role, and how it proved it."""

    subject: str
    role: Role
    via: str  # "key" | "jwt" | "ticket" | "signed-url" | "auth-off"


class AuthError(Exception):
    """Credentials given but not valid (expired, bad signature, unknown key, no role)."""


def hash_key(key: str) -> str:
    """SHA-256 hex of an API key. Keys are 256-bit random, so a fast unsalted hash is enough (as for GitHub
    tokens); the database never holds a key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_api_keys(text: str) -> dict[str, Role]:
    """``API_KEYS``: comma-separated ``key`` (admin) or ``key:role`` -> {sha256 of key: role}."""
    keys: dict[str, Role] = {}
    for item in (k.strip() for k in text.split(",")):
        if not item:
            continue
        key, role = item, Role.ADMIN
        head, sep, tail = item.rpartition(":")
        if sep and tail.strip().upper() in Role.__members__:
            key, role = head.strip(), Role.parse(tail)
        if key:
            keys[hash_key(key)] = role
    return keys


def role_from_claims(claims: dict, claim: str) -> Role:
    """The highest role named by ``claim`` (a dotted path, e.g. ``realm_access.roles``; a string or a list)."""
    value: object = claims
    for part in claim.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles = [Role[n.upper()] for n in names if isinstance(n, str) and n.upper() in Role.__members__]
    if not roles:
        raise AuthError(f"the token's {claim!r} claim names no role (viewer, operator or admin)")
    return max(roles)


class UrlSigner:
    """Signed, expiring URLs for ``<img>`` streams: HMAC-SHA256 of path, expiry and role."""

    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self.secret = secret
        self.ttl_s = ttl_s

    def _mac(self, path: str, exp: int, role: Role) -> str:
        msg = f"{path}\n{exp}\n{role.label}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def sign(self, path: str, role: Role, now: float | None = None) -> dict[str, str]:
        """The query parameters that open ``path`` for ``role`` until now + SIGNED_URL_TTL_S."""
        if not SIGNABLE.match(path):
            raise ValueError(f"only image and MJPEG paths under /api/v1/ can be signed, not {path!r}")
        exp = int((time.time() if now is None else now) + self.ttl_s)
        return {"exp": str(exp), "role": role.label, "sig": self._mac(path, exp, role)}

    def verify(self, path: str, exp: str, role: str, sig: str, now: float | None = None) -> Role:
        try:
            expires, granted = int(exp), Role.parse(role)
        except ValueError:
            raise AuthError("malformed signed URL") from None
        if not SIGNABLE.match(path) or not hmac.compare_digest(self._mac(path, expires, granted), sig):
            raise AuthError("invalid URL signature")
        if (time.time() if now is None else now) > expires:
            raise AuthError("signed URL expired")
        return granted


class Tickets:
    """Short-lived single-use WebSocket tickets: in Redis when the gateway has it (any replica may redeem), else in
    this process."""

    def __init__(self, ttl_s: float, live: RedisLive | None = None) -> None:
        self.ttl_s = ttl_s
        self.live = live
        self._local: dict[str, tuple[float, Principal]] = {}

    async def issue(self, p: Principal) -> str:
        ticket = secrets.token_urlsafe(24)
        digest = hash_key(ticket)
        if self.live is not None:
            value = f"{p.role.label}|{p.subject}"
            await self.live.client.set(TICKET_PREFIX + digest, value, px=max(1, int(self.ttl_s * 1000)))
        else:
            now = time.monotonic()
            self._local = {k: v for k, v in self._local.items() if v[0] > now}
            self._local[digest] = (now + self.ttl_s, p)
        return ticket

    async def redeem(self, ticket: str) -> Principal:
        """The ticket's principal; it can never be used again. AuthError when unknown, used or expired."""
        digest = hash_key(ticket)
        if self.live is not None:
            try:
                value = await self.live.client.getdel(TICKET_PREFIX + digest)
            except (RedisError, OSError) as exc:
                raise AuthError(f"ticket store unavailable: {exc}") from None
            if not value:
                raise AuthError("unknown, used or expired ticket")
            role, _, subject = value.partition("|")
            return Principal(subject, Role.parse(role), "ticket")
        entry = self._local.pop(digest, None)
        if entry is None or entry[0] < time.monotonic():
            raise AuthError("unknown, used or expired ticket")
        return Principal(entry[1].subject, entry[1].role, "ticket")


class JwtVerifier:
    """Bearer JWTs: HS256 with JWT_SECRET, or RS256/ES256 with an OIDC issuer's JWKS (JWT_JWKS_URL, fetched and
    cached by PyJWT's PyJWKClient); issuer and audience checked when configured; role from JWT_ROLE_CLAIM."""

    def __init__(self, s: GatewaySettings) -> None:
        self.s = s
        self.jwks = jwt.PyJWKClient(s.jwt_jwks_url, cache_keys=True, lifespan=300) if s.jwt_jwks_url else None

    @property
    def enabled(self) -> bool:
        return bool(self.s.jwt_secret or self.jwks)

    async def verify(self, token: str) -> Principal:
        if not self.enabled:
            raise AuthError("bearer tokens are not configured (JWT_SECRET or JWT_JWKS_URL)")
        options = {"require": ["exp"], "verify_aud": bool(self.s.jwt_audience)}
        kwargs = {"audience": self.s.jwt_audience or None, "issuer": self.s.jwt_issuer or None, "leeway": 30}
        try:
            header = jwt.get_unverified_header(token)
            if self.s.jwt_secret and header.get("alg") == "HS256":
                claims = jwt.decode(token, self.s.jwt_secret, algorithms=["HS256"], options=options, **kwargs)
            elif self.jwks is not None:
                algs = [a.strip() for a in self.s.jwt_algorithms.split(",") if a.strip()]
                key = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
                claims = jwt.decode(token, key.key, algorithms=algs, options=options, **kwargs)
            else:
                raise AuthError(f"token algorithm {header.get('alg')!r} not accepted")
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid bearer token: {exc}") from None
        return Principal(str(claims.get("sub", "")), role_from_claims(claims, self.s.jwt_role_claim), "jwt")


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None

    def public(self) -> dict:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class KeyTable:
    """The ``api_keys`` table (gateway migration 0008): key ids, names, roles and SHA-256 hashes, never keys."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, name: str, role: Role) -> tuple[StoredKey, str]:
        key = new_key()
        async with self.store.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO api_keys (key_id, name, role, key_hash) VALUES (%s, %s, %s, %s) "
                    "RETURNING key_id, name, role, created_at::text, revoked_at::text",
                    (secrets.token_hex(6), name, role.label, hash_key(key)),
                )
            ).fetchone()
        return StoredKey(*row), key

    async def create_first_admin(self) -> str | None:
        """An admin key when the table holds no active key (one replica creates it, under an advisory lock)."""
        key = new_key()
        async with self.store.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('spoton_api_keys_first_admin'))")
            row = await (
                await conn.execute(
                    "INSERT INTO api_keys (key_id, name, role, key_hash) SELECT %s, 'first-start admin', 'admin', %s "
                    "WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL) RETURNING key_id",
                    (secrets.token_hex(6), hash_key(key)),
                )
            ).fetchone()
        return key if row else None

    async def list(self) -> list[StoredKey]:
        async with self.store.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT key_id, name, role, created_at::text, revoked_at::text FROM api_keys ORDER BY created_at"
                )
            ).fetchall()
        return [StoredKey(*r) for r in rows]

    async def revoke(self, key_id: str) -> StoredKey | None:
        async with self.store.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s "
                    "RETURNING key_id, name, role, created_at::text, revoked_at::text",
                    (key_id,),
                )
            ).fetchone()
        return StoredKey(*row) if row else None

    async def lookup(self, key: str) -> Principal | None:
        async with self.store.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            row = await (
                await cur.execute(
                    "SELECT key_id, role FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", (hash_key(key),)
                )
            ).fetchone()
        return Principal(row["key_id"], Role.parse(row["role"]), "key") if row else None


class Auth:
    """The gateway's authenticator: every way a caller proves a role, and the first-start admin key."""

    def __init__(self, s: GatewaySettings) -> None:
        self.s = s
        self.env_keys = parse_api_keys(s.api_keys)
        self.jwt = JwtVerifier(s)
        secret = s.auth_secret.encode() if s.auth_secret else secrets.token_bytes(32)
        self.signer = UrlSigner(secret, s.signed_url_ttl_s)
        self.tickets = Tickets(s.ws_ticket_ttl_s)
        self.keys: KeyTable | None = None

    async def start(self, store: Store, live: RedisLive | None) -> None:
        """Open the key table; log AUTH=off loudly; on a first start with no key at all, create and print one."""
        self.keys = KeyTable(store)
        self.tickets.live = live
        if not self.s.auth:
            log.warning(
                "AUTH=off: authentication is DISABLED, anyone who reaches port %d is admin "
                "(unset AUTH to turn it back on)",
                self.s.gateway_port,
            )
            return
        if not self.s.auth_secret:
            log.info("AUTH_SECRET unset: signed URLs use a per-process secret (set it when running replicas)")
        if self.env_keys or self.jwt.enabled:
            return
        key = await self.keys.create_first_admin()
        if key:
            log.warning(
                "first start: created an admin API key (shown only now, stored hashed): %s  -- log in at "
                "http://<host>:%d/ with it, or `spoton --api-key KEY keys create --role viewer`",
                key,
                self.s.gateway_port,
            )

    async def by_key(self, key: str) -> Principal:
        digest = hash_key(key)
        for known, role in self.env_keys.items():
            if hmac.compare_digest(known, digest):
                return Principal("env:" + digest[:8], role, "key")
        found = await self.keys.lookup(key) if self.keys is not None else None
        if found is None:
            raise AuthError("unknown or revoked API key")
        return found
