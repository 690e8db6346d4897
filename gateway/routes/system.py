"""The gateway itself: health (open, for probes), the index of endpoints, and the OpenAPI document and its
viewers (behind the key, as every API path)."""

from __future__ import annotations

import grpc
import psycopg
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import iter_route_contexts

from gateway.deps import GatewayDep
from gateway.state import Gateway
from spoton.v1 import detection_pb2

health_router = APIRouter()
router = APIRouter()


async def detector_device(gw: Gateway) -> str:
    """The detector's device (the one that matters: the gateway itself runs no model); ``unknown`` when down."""
    try:
        info = await gw.clients.detection.GetModelInfo(
            detection_pb2.DetectionServiceGetModelInfoRequest(), timeout=2.0, metadata=gw.clients.metadata
        )
    except grpc.aio.AioRpcError:
        return "unknown"
    return info.info.device


@health_router.get("/health")
async def health(gw: GatewayDep) -> dict:
    services = await gw.clients.health() if gw.clients else {}
    try:
        await gw.store.ping()
        db_ok = True
    except (psycopg.Error, OSError):
        db_ok = False
    serving = all(v == "SERVING" for v in services.values())
    redis_ok = await gw.live.ping() if gw.live else False
    device = await detector_device(gw) if services.get("detection") == "SERVING" else "unknown"
    return {
        "status": "healthy" if serving and db_ok and (redis_ok or gw.live is None) else "degraded",
        "gpu_available": device.startswith("cuda"),
        "device": device,
        "models_loaded": services.get("detection") == "SERVING" and services.get("reid") == "SERVING",
        "database_connected": db_ok,
        "redis_connected": redis_ok,
        "history": gw.history.status() if gw.history else None,
        "services": services,
    }


@router.get("/api/v1/")
async def index(request: Request) -> dict:
    # Every path the app serves: app.routes holds the included routers, not their routes.
    return {"endpoints": sorted({r.path for r in iter_route_contexts(request.app.routes) if r.path})}


OPENAPI_URL = "/openapi.json"


@router.get(OPENAPI_URL, include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )


@router.get("/docs/oauth2-redirect", include_in_schema=False)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} - ReDoc")
