"""``python -m tracking_svc.server``: the tracking gRPC service."""

from __future__ import annotations

from spoton.bootstrap import server
from spoton.bootstrap.logs import configure_logging
from spoton.v1 import tracking_pb2, tracking_pb2_grpc
from tracking_svc.config import TrackingSettings
from tracking_svc.servicer import TrackingServicer


def main() -> None:
    settings = TrackingSettings()
    configure_logging("tracking_svc", settings.log_level, settings.log_json)
    servicer = TrackingServicer(settings)
    spec = server.ServiceSpec(
        name="tracking",
        service_names=[tracking_pb2.DESCRIPTOR.services_by_name["TrackingService"].full_name],
        register=lambda s: tracking_pb2_grpc.add_TrackingServiceServicer_to_server(servicer, s),
    )
    server.run(spec, settings, settings.port, settings.metrics_port)


if __name__ == "__main__":
    main()
