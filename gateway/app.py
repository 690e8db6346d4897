"""The gateway's FastAPI app: REST + WebSocket over the pipeline and the services (DESIGN §3).

The routes live in ``gateway/routes/`` (one router per resource), their shared state in ``gateway/state.py``,
their dependencies (state accessors, the API-key check) in ``gateway/deps.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import make_asgi_app

from gateway.config import GatewaySettings
from gateway.deps import Viewer
from gateway.errors import add_exception_handlers
from gateway.routes import (
    analytics,
    auth,
    calibration,
    dashboard,
    search,
    sessions,
    system,
    tracking,
    video_sets,
    websockets,
)
from gateway.state import Gateway
from spoton.bootstrap.logs import configure_logging

# Behind authentication, viewer and up (DESIGN §3); routes that change things ask for operator or admin themselves.
# /health, /metrics and the dashboard page stay open.
GUARDED = (
    auth.router,
    system.router,
    video_sets.router,
    calibration.router,
    sessions.router,
    tracking.router,
    analytics.router,
    search.router,  # operator and up (its route asks): the answers are biometric
    websockets.router,
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    gw = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        yield
        await gw.stop()

    # The OpenAPI document and its viewers are served by system.router, behind the key like the rest of the API.
    app = FastAPI(
        title="SpotOn gateway", version="0.1.0", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.gateway = gw
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["*"],
            allow_headers=["*"],
        )
    add_exception_handlers(app)
    app.mount("/metrics", make_asgi_app())
    app.include_router(system.health_router)
    for router in GUARDED:
        app.include_router(router, dependencies=[Viewer])
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files, name="static")
    return app


QUERY = re.compile(r"\?[^\s\"']*")


class RedactQuery(logging.Filter):
    """Drops query strings from uvicorn's access and WebSocket log lines (tickets, signatures, any stray key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(QUERY.sub("?[redacted]", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = QUERY.sub("?[redacted]", record.msg)
        return True


def redact_access_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())


def main() -> None:
    import uvicorn

    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    redact_access_logs()
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        ws_ping_interval=20,
    )
