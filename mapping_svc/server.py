"""``python -m mapping_svc.server``: the mapping gRPC service (calibrations in PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mapping_svc.calibrations import PgCalibrationStore
from mapping_svc.config import MappingSettings
from mapping_svc.servicer import MappingServicer
from spoton.bootstrap import server
from spoton.bootstrap.logs import configure_logging, log_event
from spoton.db import apply_migrations, resolve_database_url
from spoton.v1 import mapping_pb2, mapping_pb2_grpc
from spoton.videoset import VideoSetCatalog

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def main() -> None:
    settings = MappingSettings()
    log = configure_logging("mapping_svc", settings.log_level, settings.log_json)
    servicer = MappingServicer(settings)

    async def warmup() -> None:
        def prepare() -> None:
            url = resolve_database_url(settings.database_url)
            apply_migrations(url, MIGRATIONS, "mapping")
            servicer.store = PgCalibrationStore(url)
            if settings.video_sets_dir:
                for vs in VideoSetCatalog(Path(settings.video_sets_dir)).all().values():
                    n = servicer.store.seed(vs)
                    log_event(log, "seeded calibrations", level=logging.INFO, video_set=vs.name, cameras=n)

        await asyncio.to_thread(prepare)

    spec = server.ServiceSpec(
        name="mapping",
        service_names=[mapping_pb2.DESCRIPTOR.services_by_name["MappingService"].full_name],
        register=lambda s: mapping_pb2_grpc.add_MappingServiceServicer_to_server(servicer, s),
        warmup=warmup,
    )
    server.run(spec, settings, settings.port, settings.metrics_port)


if __name__ == "__main__":
    main()
