"""Typed settings read once from the environment (and ``.env``), DESIGN §7."""

from __future__ import annotations

import hmac

from pydantic_settings import BaseSettings, SettingsConfigDict


def key_matches(candidate: str | None, keys: frozenset[str]) -> bool:
    """Whether ``candidate`` is one of ``keys``, compared in constant time (no timing oracle on the key)."""
    if not candidate:
        return False
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def parse_wh(text: str, name: str, multiple: int = 32) -> tuple[int, int]:
    """``"W"`` or ``"WxH"`` pixels -> (W, H); ValueError unless both are positive multiples of ``multiple``."""
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x") if p.strip()]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0 or any(p % multiple for p in parts):
        raise ValueError(f"{name} must be W or WxH in positive multiples of {multiple}, got {text!r}")
    return parts[0], parts[1]


class CommonSettings(BaseSettings):
    """Settings every service reads. Subclass per service; instances are frozen."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    device: str = "auto"
    # Gateway client keys: comma-separated ``key`` (admin) or ``key:role`` (viewer, operator, admin).
    api_keys: str = ""
    # The key the gateway presents to the stage services (``x-api-key``); stages accept only it. Empty = open.
    service_key: str = ""
    log_level: str = "INFO"
    log_json: bool | None = None
    grpc_host: str = "0.0.0.0"
    max_message_mb: int = 64
    shutdown_grace_s: float = 5.0
    detection_svc_addr: str = "localhost:50051"
    tracking_svc_addr: str = "localhost:50052"
    reid_svc_addr: str = "localhost:50053"
    mapping_svc_addr: str = "localhost:50054"
    analytics_svc_addr: str = "localhost:50055"
    database_url: str = ""
    # TLS between services (PEM file paths). Servers: certificate and key, and a CA for client certificates
    # (mutual TLS). Clients: the CA that signed the servers' certificates, and their own pair for mutual TLS.
    grpc_tls_cert: str = ""
    grpc_tls_key: str = ""
    grpc_tls_client_ca: str = ""
    grpc_tls_ca: str = ""
    grpc_tls_client_cert: str = ""
    grpc_tls_client_key: str = ""

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024
