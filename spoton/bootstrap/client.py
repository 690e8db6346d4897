"""Client channels with deadlines, retries for idempotent unary calls, keepalive and the API key."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# gRPC's own retry machinery (service config), applied to unary calls only: streams are resumed by the caller.
# round_robin spreads calls over every address the target resolves to (a headless Service's pods, DESIGN §8).
_RETRY_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [
                    {"service": "spoton.v1.DetectionService", "method": "Detect"},
                    {"service": "spoton.v1.DetectionService", "method": "GetModelInfo"},
                    {"service": "spoton.v1.ReidService", "method": "Embed"},
                    {"service": "spoton.v1.ReidService", "method": "GetModelInfo"},
                    {"service": "spoton.v1.ReidService", "method": "GetGalleryStats"},
                    {"service": "spoton.v1.ReidService", "method": "GetPersonThumbnail"},
                    {"service": "spoton.v1.TrackingService", "method": "ListTrackers"},
                    {"service": "spoton.v1.MappingService"},
                    {"service": "spoton.v1.AnalyticsService"},
                ],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def channel_options(max_message_bytes: int = 64 * 1024 * 1024) -> list[tuple[str, object]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", _RETRY_SERVICE_CONFIG),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        # A restarted replica is found again within seconds (gRPC's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


def grpc_target(address: str) -> str:
    """A ``*_SVC_ADDR`` as a gRPC target: ``a:1,b:2`` (fixed replicas) becomes ``ipv4:a:1,b:2``; ``host:port`` and
    ``dns:///host:port`` (a headless Service) pass through."""
    if "," in address and ":///" not in address and not address.startswith(("ipv4:", "ipv6:")):
        return "ipv4:" + ",".join(p.strip() for p in address.split(","))
    return address


def channel_credentials(settings) -> grpc.ChannelCredentials | None:  # type: ignore[no-untyped-def]
    """TLS credentials for calls to the services when GRPC_TLS_CA is set (with a client pair for mutual TLS)."""
    if not getattr(settings, "grpc_tls_ca", ""):
        return None

    def read(path: str) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    return grpc.ssl_channel_credentials(
        read(settings.grpc_tls_ca), read(settings.grpc_tls_client_key), read(settings.grpc_tls_client_cert)
    )


def aio_channel(
    address: str, max_message_bytes: int = 64 * 1024 * 1024, credentials: grpc.ChannelCredentials | None = None
) -> grpc.aio.Channel:
    target, options = grpc_target(address), channel_options(max_message_bytes)
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=options)
    return grpc.aio.insecure_channel(target, options=options)


def sync_channel(address: str, max_message_bytes: int = 64 * 1024 * 1024) -> grpc.Channel:
    return grpc.insecure_channel(grpc_target(address), options=channel_options(max_message_bytes))


def metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the API key when one is configured."""
    return (("x-api-key", api_key),) if api_key else ()


async def health_status(channel: grpc.aio.Channel, service: str = "", timeout_s: float = 1.0) -> str:
    """The health service's status name for ``service`` ("SERVING", "NOT_SERVING", "UNREACHABLE", ...)."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
        )
    except grpc.aio.AioRpcError:
        return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def wait_serving(channel: grpc.aio.Channel, timeout_s: float = 60.0, service: str = "") -> None:
    """Poll health until SERVING; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await health_status(channel, service) == "SERVING":
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"service not SERVING after {timeout_s:.0f} s")
