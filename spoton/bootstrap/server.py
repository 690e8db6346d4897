"""The one gRPC server runtime every service uses.

Health (NOT_SERVING until warm-up finished), reflection, Prometheus metrics, API-key check, max message size and
a graceful SIGTERM drain, as in grpc/grpc's python examples, with the libraries' own servicers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram, start_http_server

from spoton.bootstrap.logs import log_event
from spoton.bootstrap.settings import CommonSettings, key_matches

log = logging.getLogger("spoton.server")

RPC_STARTED = Counter("spoton_grpc_started_total", "RPCs started", ["service", "method"])
RPC_HANDLED = Counter("spoton_grpc_handled_total", "RPCs finished", ["service", "method", "code"])
RPC_LATENCY = Histogram(
    "spoton_grpc_handling_seconds",
    "Time from RPC start to its end (whole stream for streaming RPCs)",
    ["service", "method"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
)

# Per stream message, inside the service (decode + model + reply building), so a client can tell its round trip
# apart from the work: the difference is transport and queueing (bench/e2e.py reports it).
COMPUTE_SECONDS = Histogram(
    "spoton_compute_seconds",
    "Time a service spends on one stream message, transport excluded",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class WarmupFailed(RuntimeError):
    """The service could not get ready (its cause is chained); the process exits with status 1."""


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC; refuses calls without the gateway's ``x-api-key`` (SERVICE_KEY) when it is set."""

    def __init__(self, api_keys: frozenset[str]) -> None:
        self._keys = api_keys

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        method = handler_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        if self._keys and not method.startswith(OPEN_METHOD_PREFIXES):
            metadata = dict(handler_call_details.invocation_metadata or ())
            if not key_matches(metadata.get("x-api-key"), self._keys):
                RPC_HANDLED.labels(service, name, "UNAUTHENTICATED").inc()
                return _deny_handler(await continuation(handler_call_details))
        RPC_STARTED.labels(service, name).inc()
        handler = await continuation(handler_call_details)
        return _timed_handler(handler, service, name) if handler else handler


def _deny_handler(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    async def deny(request_or_iterator, context):  # type: ignore[no-untyped-def]
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid x-api-key metadata")

    async def deny_stream(request_or_iterator, context):  # type: ignore[no-untyped-def]
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid x-api-key metadata")
        yield  # pragma: no cover

    req_des = handler.request_deserializer if handler else None
    resp_ser = handler.response_serializer if handler else None
    if handler and handler.response_streaming:
        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(deny_stream, req_des, resp_ser)
        return grpc.unary_stream_rpc_method_handler(deny_stream, req_des, resp_ser)
    if handler and handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny, req_des, resp_ser)
    return grpc.unary_unary_rpc_method_handler(deny, req_des, resp_ser)


def _timed_handler(handler: grpc.RpcMethodHandler, service: str, name: str) -> grpc.RpcMethodHandler:
    def done(start: float, context: grpc.aio.ServicerContext) -> None:
        RPC_LATENCY.labels(service, name).observe(time.perf_counter() - start)
        code = context.code() if hasattr(context, "code") else None
        RPC_HANDLED.labels(service, name, getattr(code, "name", None) or "OK").inc()

    if handler.response_streaming:
        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request_or_iterator, context):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                async for item in inner(request_or_iterator, context):
                    yield item
            finally:
                done(start, context)

        factory = (
            grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        )
        return factory(streaming, handler.request_deserializer, handler.response_serializer)

    inner_unary = handler.unary_unary or handler.stream_unary

    async def unary(request_or_iterator, context):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return await inner_unary(request_or_iterator, context)
        finally:
            done(start, context)

    factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
    return factory(unary, handler.request_deserializer, handler.response_serializer)


@dataclass
class ServiceSpec:
    """What one service plugs into the runtime.

    Attributes:
        name: short name for logs and metrics ("detection").
        service_names: full proto service names, e.g. ``detection_pb2.DESCRIPTOR.services_by_name[...].full_name``.
        register: adds the servicers to the server.
        warmup: loads models etc.; health turns SERVING after it returns.
        shutdown: releases resources after the server stopped.
    """

    name: str
    service_names: Sequence[str]
    register: Callable[[grpc.aio.Server], None]
    warmup: Callable[[], Awaitable[None]] | None = None
    shutdown: Callable[[], Awaitable[None]] | None = None
    extra_options: list[tuple[str, object]] = field(default_factory=list)


def server_credentials(settings: CommonSettings) -> grpc.ServerCredentials | None:
    """TLS from PEM files (Kubernetes Secrets mounted as files) when GRPC_TLS_CERT and GRPC_TLS_KEY are set;
    with GRPC_TLS_CLIENT_CA too, clients must present a certificate signed by it (mutual TLS)."""
    if not (settings.grpc_tls_cert and settings.grpc_tls_key):
        return None
    with open(settings.grpc_tls_cert, "rb") as cert, open(settings.grpc_tls_key, "rb") as key:
        pair = (key.read(), cert.read())
    client_ca = None
    if settings.grpc_tls_client_ca:
        with open(settings.grpc_tls_client_ca, "rb") as ca:
            client_ca = ca.read()
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


def server_options(settings: CommonSettings) -> list[tuple[str, object]]:
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


async def serve(spec: ServiceSpec, settings: CommonSettings, port: int, metrics_port: int) -> None:
    """Run until SIGTERM/SIGINT: start, warm up, report SERVING, then drain gracefully.

    A warm-up that fails is logged with its traceback, the server drains and ``WarmupFailed`` is raised.
    """
    server = grpc.aio.server(
        options=server_options(settings) + spec.extra_options,
        interceptors=[ObservabilityInterceptor(frozenset({settings.service_key} - {""}))],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    spec.register(server)
    reflection.enable_server_reflection(
        [*spec.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    for name in ("", *spec.service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    address = f"{settings.grpc_host}:{port}"
    credentials = server_credentials(settings)
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if metrics_port >= 0:
        start_http_server(metrics_port)
    await server.start()
    log_event(log, "listening", service=spec.name, port=bound, metrics_port=metrics_port, tls=bool(credentials))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    warm_failed: list[BaseException] = []

    async def warm() -> None:
        try:
            if spec.warmup:
                await spec.warmup()
        except Exception as exc:  # any failure ends the process, logged with its traceback
            log.error("warm-up failed; exiting", exc_info=True, extra={"fields": {"service": spec.name}})
            warm_failed.append(exc)
            stop.set()
            return
        for name in ("", *spec.service_names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log_event(log, "serving", service=spec.name)

    warm_task = asyncio.create_task(warm())
    await stop.wait()
    log_event(log, "draining", service=spec.name, grace_s=settings.shutdown_grace_s)
    warm_task.cancel()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_s)
    if spec.shutdown:
        await spec.shutdown()
    log_event(log, "stopped", service=spec.name)
    if warm_failed:
        raise WarmupFailed(spec.name) from warm_failed[0]


def run(spec: ServiceSpec, settings: CommonSettings, port: int, metrics_port: int) -> None:
    """Blocking entry point for ``python -m <svc>.server``."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    try:
        asyncio.run(serve(spec, settings, port, metrics_port))
    except WarmupFailed:
        sys.exit(1)  # the traceback was logged when the warm-up failed
