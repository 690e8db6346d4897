"""``python -m reid_svc.server``: the re-identification gRPC service."""

from __future__ import annotations

from reid_svc.config import ReidSettings
from reid_svc.servicer import ReidServicer
from spoton.bootstrap import server
from spoton.bootstrap.logs import configure_logging
from spoton.v1 import reid_pb2, reid_pb2_grpc


def main() -> None:
    settings = ReidSettings()
    configure_logging("reid_svc", settings.log_level, settings.log_json)
    servicer = ReidServicer(settings)
    spec = server.ServiceSpec(
        name="reid",
        service_names=[reid_pb2.DESCRIPTOR.services_by_name["ReidService"].full_name],
        register=lambda s: reid_pb2_grpc.add_ReidServiceServicer_to_server(servicer, s),
        warmup=servicer.load,
    )
    server.run(spec, settings, settings.port, settings.metrics_port)


if __name__ == "__main__":
    main()
