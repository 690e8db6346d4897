"""``python -m spoton.bootstrap.probe [host:port]``: exit 0 when the gRPC health service says SERVING.

The container health check of Docker Compose, and Kubernetes' probe when TLS is on (its native gRPC probe speaks
plaintext only). With ``GRPC_TLS_CA`` set it speaks TLS, with ``GRPC_TLS_CLIENT_CERT``/``_KEY`` mutual TLS.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from spoton.bootstrap.client import channel_credentials
from spoton.bootstrap.settings import CommonSettings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = args[0] if args else "localhost:50051"
    credentials = channel_credentials(CommonSettings())
    try:
        with grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as exc:
        print(f"{target}: {exc.code().name}", file=sys.stderr)
        return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
