"""AnalyticsService: proto <-> history queries (run in a worker thread, one connection per call)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import psycopg

from analytics_svc.queries import HistoryQueries, Range
from spoton.bootstrap.errors import UnavailableError, stream_errors, unary_errors
from spoton.v1 import analytics_pb2, analytics_pb2_grpc

EXPORT_CHUNK = 1 << 20


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(
        self,
        database_url: str,
        timescale: bool = False,
        max_buckets: int = 100_000,
        max_trajectory_points: int = 500_000,
    ) -> None:
        self.database_url = database_url
        self.timescale = timescale
        self.max_buckets = max_buckets
        self.max_trajectory_points = max_trajectory_points

    async def _query(self, fn):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            try:
                with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                    return fn(HistoryQueries(conn, self.timescale, self.max_buckets))
            except psycopg.OperationalError as exc:
                raise UnavailableError(f"database unavailable: {exc}") from exc

        return await asyncio.to_thread(run)

    @staticmethod
    def _range(r: analytics_pb2.TimeRange) -> Range:
        return Range(r.session_id, r.start_ns, r.end_ns)

    @unary_errors
    async def Occupancy(self, request, context):
        group = {analytics_pb2.OCCUPANCY_GROUP_CAMERA: "camera", analytics_pb2.OCCUPANCY_GROUP_ZONE: "zone"}.get(
            request.group_by, ""
        )
        buckets = await self._query(lambda q: q.occupancy(self._range(request.range), request.bucket_s or 1.0, group))
        return analytics_pb2.OccupancyResponse(buckets=[analytics_pb2.OccupancyBucket(**b) for b in buckets])

    @unary_errors
    async def Trajectory(self, request, context):
        trajs = await self._query(
            lambda q: q.trajectories(
                self._range(request.range), request.global_id, request.simplify_m, self.max_trajectory_points
            )
        )
        return analytics_pb2.TrajectoryResponse(
            trajectories=[
                analytics_pb2.PersonTrajectory(
                    global_id=t["global_id"],
                    length_m=t["length_m"],
                    mean_speed_mps=t["mean_speed_mps"],
                    points=[analytics_pb2.TrajectoryPoint(**p) for p in t["points"]],
                )
                for t in trajs
            ]
        )

    @unary_errors
    async def PeopleCount(self, request, context):
        ids = await self._query(lambda q: q.people_count(self._range(request.range)))
        return analytics_pb2.PeopleCountResponse(count=len(ids), global_ids=ids)

    @unary_errors
    async def Dwell(self, request, context):
        rows = await self._query(lambda q: q.dwell(self._range(request.range), request.zone_id))
        values = np.array([d["dwell_s"] for d in rows]) if rows else np.zeros(0)
        return analytics_pb2.DwellResponse(
            dwells=[analytics_pb2.PersonDwell(**d) for d in rows],
            mean_s=float(values.mean()) if len(values) else 0.0,
            p50_s=float(np.percentile(values, 50)) if len(values) else 0.0,
            p90_s=float(np.percentile(values, 90)) if len(values) else 0.0,
        )

    @unary_errors
    async def Heatmap(self, request, context):
        h = await self._query(lambda q: q.heatmap(self._range(request.range), request.cell_m or 0.5))
        return analytics_pb2.HeatmapResponse(**h)

    @unary_errors
    async def ZoneEvents(self, request, context):
        rows = await self._query(lambda q: q.zone_events(self._range(request.range), request.zone_id))
        kinds = {"enter": analytics_pb2.ZONE_EVENT_KIND_ENTER, "exit": analytics_pb2.ZONE_EVENT_KIND_EXIT}
        return analytics_pb2.ZoneEventsResponse(
            events=[analytics_pb2.ZoneEvent(**{**e, "kind": kinds[e["kind"]]}) for e in rows]
        )

    @unary_errors
    async def LineCrossings(self, request, context):
        rows = await self._query(lambda q: q.line_crossings(self._range(request.range), request.line_id))
        return analytics_pb2.LineCrossingsResponse(lines=[analytics_pb2.LineCount(**c) for c in rows])

    @unary_errors
    async def Summary(self, request, context):
        return analytics_pb2.SummaryResponse(**await self._query(lambda q: q.summary(self._range(request.range))))

    def _export(self, r: Range, fmt: str) -> Iterator[bytes]:
        """The export's pieces, read on one connection held for the stream."""
        try:
            with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                yield from HistoryQueries(conn, self.timescale, self.max_buckets).export(r, fmt)
        except psycopg.OperationalError as exc:
            raise UnavailableError(f"database unavailable: {exc}") from exc

    @stream_errors
    async def Export(self, request, context):
        fmt = {analytics_pb2.EXPORT_FORMAT_CSV: "csv", analytics_pb2.EXPORT_FORMAT_PARQUET: "parquet"}.get(
            request.format, "csv"
        )
        pieces = self._export(self._range(request.range), fmt)
        try:
            # Each piece is read in a worker thread; the next is read only once this one is handed to gRPC.
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                for i in range(0, len(piece), EXPORT_CHUNK):
                    yield analytics_pb2.ExportResponse(chunk=piece[i : i + EXPORT_CHUNK])
        finally:
            await asyncio.to_thread(pieces.close)
