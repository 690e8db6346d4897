"""The operator's pages (static HTML + JS, no build step, open without a key: each asks for one itself): the live
console and the calibration page, and their scripts and styles under ``/static/`` (the console's own modules and
the vendored uPlot chart library)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()
# Mounted at /static by the app factory (a mount, not a route: FastAPI's StaticFiles serves conditional GETs).
static_files = StaticFiles(directory=STATIC)


@router.get("/", include_in_schema=False)
async def dashboard() -> Response:
    page = STATIC / "index.html"
    if not page.exists():
        raise HTTPException(404, "dashboard not built")
    return FileResponse(page)


@router.get("/calibrate.html", include_in_schema=False)
async def calibrate() -> Response:
    """Calibrate a camera: click image and floor points, see the fit, save a version, roll back."""
    return FileResponse(STATIC / "calibrate.html")
