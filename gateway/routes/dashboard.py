"""The operator's pages (static HTML + JS, open without a key: each asks for one itself): the live dashboard and
the calibration page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


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
