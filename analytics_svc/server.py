"""``python -m analytics_svc.server``: the analytics gRPC service (reads the gateway's history)."""

from __future__ import annotations

import asyncio

import psycopg

from analytics_svc.config import AnalyticsSettings
from analytics_svc.servicer import AnalyticsServicer
from spoton.bootstrap import server
from spoton.bootstrap.logs import configure_logging
from spoton.db import resolve_database_url, timescaledb_installed
from spoton.v1 import analytics_pb2, analytics_pb2_grpc


def main() -> None:
    settings = AnalyticsSettings()
    configure_logging("analytics_svc", settings.log_level, settings.log_json)
    servicer = AnalyticsServicer(
        "",
        max_buckets=settings.analytics_max_buckets,
        max_trajectory_points=settings.analytics_max_trajectory_points,
    )

    async def warmup() -> None:
        def connect() -> None:
            servicer.database_url = resolve_database_url(settings.database_url)
            with psycopg.connect(servicer.database_url) as conn:
                servicer.timescale = timescaledb_installed(conn)

        await asyncio.to_thread(connect)

    spec = server.ServiceSpec(
        name="analytics",
        service_names=[analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name],
        register=lambda s: analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(servicer, s),
        warmup=warmup,
    )
    server.run(spec, settings, settings.port, settings.metrics_port)


if __name__ == "__main__":
    main()
