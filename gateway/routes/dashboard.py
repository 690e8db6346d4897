"""The live dashboard page (static HTML + JS, open without a key: it asks for one itself)."""

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
