"""Analytics over a session's history: proxies to analytics_svc that reshape its replies into friendlier JSON
(int64 as numbers, ISO times beside the ns), the heatmap as PNG, and exports (CSV / Parquet)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.deps import GatewayDep, Span
from gateway.errors import ApiError
from gateway.render import render_heatmap
from gateway.state import Gateway
from spoton.timeutil import ns_to_iso
from spoton.v1 import analytics_pb2

router = APIRouter(prefix="/api/v1/analytics")


async def analytics_call(gw: Gateway, method: str, request: Message) -> dict:
    """``AnalyticsService.<method>(request)`` as protobuf JSON (field names as in the proto)."""
    reply = await getattr(gw.clients.analytics, method)(
        request, timeout=gw.settings.rpc_timeout_s, metadata=gw.clients.metadata
    )
    return json_format.MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def as_int_ns(d: dict) -> dict:
    """int64 fields arrive as strings from protobuf JSON; ISO times are friendlier, ns stay exact."""
    for key in ("start_ns", "timestamp_ns", "first_ns", "last_ns"):
        if key in d:
            d[key] = int(d[key])
            d[key.replace("_ns", "")] = ns_to_iso(d[key]) if d[key] else None
    for v in d.values():
        for item in v if isinstance(v, list) else []:
            if isinstance(item, dict):
                as_int_ns(item)
    return d


@router.get("/occupancy")
async def occupancy(
    span: Span,
    gw: GatewayDep,
    bucket_s: float = Query(1.0, gt=0),
    group_by: str = "",
) -> dict:
    groups = {"": 0, "camera": 1, "zone": 2}
    if group_by not in groups:
        raise ApiError(400, "invalid_argument", "group_by must be camera or zone")
    request = analytics_pb2.OccupancyRequest(range=span, bucket_s=bucket_s, group_by=groups[group_by])
    return as_int_ns(await analytics_call(gw, "Occupancy", request))


@router.get("/people-count")
async def people_count(span: Span, gw: GatewayDep) -> dict:
    reply = await analytics_call(gw, "PeopleCount", analytics_pb2.PeopleCountRequest(range=span))
    return {"count": reply["count"], "global_ids": [int(g) for g in reply["global_ids"]]}


@router.get("/dwell")
async def dwell(span: Span, gw: GatewayDep, zone_id: str = "") -> dict:
    reply = await analytics_call(gw, "Dwell", analytics_pb2.DwellRequest(range=span, zone_id=zone_id))
    for d in reply["dwells"]:
        d["global_id"] = int(d["global_id"])
    return reply


@router.get("/heatmap")
async def heatmap(span: Span, gw: GatewayDep, cell_m: float = Query(0.5, gt=0)) -> dict:
    return await analytics_call(gw, "Heatmap", analytics_pb2.HeatmapRequest(range=span, cell_m=cell_m))


@router.get("/heatmap.png")
async def heatmap_png(
    span: Span,
    gw: GatewayDep,
    cell_m: float = Query(0.5, gt=0),
    px_per_m: float = Query(20.0, gt=0, le=200),
) -> Response:
    h = await heatmap(span, gw, cell_m)
    png = await asyncio.to_thread(render_heatmap, h, px_per_m)
    return Response(png, media_type="image/png")


@router.get("/zone-events")
async def zone_events(span: Span, gw: GatewayDep, zone_id: str = "") -> dict:
    request = analytics_pb2.ZoneEventsRequest(range=span, zone_id=zone_id)
    reply = as_int_ns(await analytics_call(gw, "ZoneEvents", request))
    for e in reply["events"]:
        e["global_id"] = int(e["global_id"])
        e["kind"] = e["kind"].removeprefix("ZONE_EVENT_KIND_").lower()
    return reply


@router.get("/line-crossings")
async def line_crossings(span: Span, gw: GatewayDep, line_id: str = "") -> dict:
    request = analytics_pb2.LineCrossingsRequest(range=span, line_id=line_id)
    return await analytics_call(gw, "LineCrossings", request)


@router.get("/trajectory")
async def trajectory(
    span: Span,
    gw: GatewayDep,
    global_id: int = 0,
    simplify_m: float = Query(0.0, ge=0),
) -> dict:
    request = analytics_pb2.TrajectoryRequest(range=span, global_id=global_id, simplify_m=simplify_m)
    reply = as_int_ns(await analytics_call(gw, "Trajectory", request))
    for t in reply["trajectories"]:
        t["global_id"] = int(t["global_id"])
    return reply


@router.get("/summary")
async def summary(span: Span, gw: GatewayDep) -> dict:
    reply = await analytics_call(gw, "Summary", analytics_pb2.SummaryRequest(range=span))
    reply["track_points"] = int(reply["track_points"])
    return as_int_ns(reply)


@router.get("/export")
async def export(span: Span, gw: GatewayDep, format: str = "csv") -> StreamingResponse:
    """The range's history as CSV or Parquet, streamed piece by piece as analytics reads it (memory stays flat).

    The first piece is awaited before the response starts, so an error (unknown session, bad range) is still a 4xx
    JSON body; each later piece has ``rpc_timeout_s`` of its own.
    """
    formats = {"csv": analytics_pb2.EXPORT_FORMAT_CSV, "parquet": analytics_pb2.EXPORT_FORMAT_PARQUET}
    if format not in formats:
        raise ApiError(400, "invalid_argument", "format must be csv or parquet")
    call = gw.clients.analytics.Export(
        analytics_pb2.ExportRequest(range=span, format=formats[format]), metadata=gw.clients.metadata
    )
    pieces = aiter(call)
    try:
        first = await asyncio.wait_for(anext(pieces), gw.settings.rpc_timeout_s)
    except StopAsyncIteration:
        first = None

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield first.chunk
                while True:
                    try:
                        piece = await asyncio.wait_for(anext(pieces), gw.settings.rpc_timeout_s)
                    except StopAsyncIteration:
                        return
                    yield piece.chunk
        finally:
            call.cancel()

    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    filename = f"spoton-{span.session_id}.{format}"
    return StreamingResponse(
        body(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
