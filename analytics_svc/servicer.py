"""AnalyticsService: proto <-> history queries (run in a worker thread, one connection per call)."""

from __future__ import annotations

import asyncio

import psycopg

from analytics_svc.queries import HistoryQueries, Range
from spoton.bootstrap.errors import UnavailableError, unary_errors
from spoton.v1 import analytics_pb2, analytics_pb2_grpc


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, database_url: str, timescale: bool = False) -> None:
        self.database_url = database_url
        self.timescale = timescale

    async def _query(self, fn):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            try:
                with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                    return fn(HistoryQueries(conn, self.timescale))
            except psycopg.OperationalError as exc:
                raise UnavailableError(f"database unavailable: {exc}") from exc

        return await asyncio.to_thread(run)

    @staticmethod
    def _range(r: analytics_pb2.TimeRange) -> Range:
        return Range(r.session_id, r.start_ns, r.end_ns)

    @unary_errors
    async def Occupancy(self, request, context):
        if request.group_by == analytics_pb2.OCCUPANCY_GROUP_ZONE:
            raise ValueError("occupancy per zone is not available yet; group by camera or the whole floor")
        buckets = await self._query(
            lambda q: q.occupancy(
                self._range(request.range),
                request.bucket_s or 1.0,
                request.group_by == analytics_pb2.OCCUPANCY_GROUP_CAMERA,
            )
        )
        return analytics_pb2.OccupancyResponse(buckets=[analytics_pb2.OccupancyBucket(**b) for b in buckets])

    @unary_errors
    async def Trajectory(self, request, context):
        trajs = await self._query(
            lambda q: q.trajectories(self._range(request.range), request.global_id, request.simplify_m)
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
