"""``python -m detection_svc.server``: the detection gRPC service."""

from __future__ import annotations

from detection_svc.config import DetectionSettings
from detection_svc.servicer import DetectionServicer
from spoton.bootstrap import server
from spoton.bootstrap.logs import configure_logging
from spoton.v1 import detection_pb2, detection_pb2_grpc


def main() -> None:
    settings = DetectionSettings()
    configure_logging("detection_svc", settings.log_level, settings.log_json)
    servicer = DetectionServicer(settings)
    spec = server.ServiceSpec(
        name="detection",
        service_names=[detection_pb2.DESCRIPTOR.services_by_name["DetectionService"].full_name],
        register=lambda s: detection_pb2_grpc.add_DetectionServiceServicer_to_server(servicer, s),
        warmup=servicer.load,
    )
    server.run(spec, settings, settings.port, settings.metrics_port)


if __name__ == "__main__":
    main()
