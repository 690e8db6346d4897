"""Channels and stubs to the five gRPC services, opened once per gateway."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from gateway.config import GatewaySettings
from spoton.bootstrap.client import aio_channel, health_status, metadata
from spoton.v1 import (
    analytics_pb2_grpc,
    detection_pb2_grpc,
    mapping_pb2_grpc,
    reid_pb2_grpc,
    tracking_pb2_grpc,
)


@dataclass
class ServiceClients:
    channels: dict[str, grpc.aio.Channel]
    detection: detection_pb2_grpc.DetectionServiceStub
    tracking: tracking_pb2_grpc.TrackingServiceStub
    reid: reid_pb2_grpc.ReidServiceStub
    mapping: mapping_pb2_grpc.MappingServiceStub
    analytics: analytics_pb2_grpc.AnalyticsServiceStub
    metadata: tuple[tuple[str, str], ...]

    @classmethod
    def connect(cls, s: GatewaySettings) -> ServiceClients:
        addrs = {
            "detection": s.detection_svc_addr,
            "tracking": s.tracking_svc_addr,
            "reid": s.reid_svc_addr,
            "mapping": s.mapping_svc_addr,
            "analytics": s.analytics_svc_addr,
        }
        ch = {name: aio_channel(addr, s.max_message_bytes) for name, addr in addrs.items()}
        key = next(iter(sorted(s.api_key_set)), None)
        return cls(
            ch,
            detection_pb2_grpc.DetectionServiceStub(ch["detection"]),
            tracking_pb2_grpc.TrackingServiceStub(ch["tracking"]),
            reid_pb2_grpc.ReidServiceStub(ch["reid"]),
            mapping_pb2_grpc.MappingServiceStub(ch["mapping"]),
            analytics_pb2_grpc.AnalyticsServiceStub(ch["analytics"]),
            metadata(key),
        )

    async def health(self) -> dict[str, str]:
        return {name: await health_status(ch, timeout_s=1.0) for name, ch in self.channels.items()}

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
