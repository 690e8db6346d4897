"""Channels and stubs to the five gRPC services, opened once per gateway."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc

from gateway.config import GatewaySettings
from spoton.bootstrap.client import aio_channel, channel_credentials, health_status, metadata
from spoton.bootstrap.replicas import ReplicaRing, resolve
from spoton.v1 import (
    analytics_pb2_grpc,
    detection_pb2_grpc,
    mapping_pb2_grpc,
    reid_pb2_grpc,
    tracking_pb2_grpc,
)


@dataclass
class StageReplicas:
    """Channels to every replica of a stateful stage (tracking, reid's Associate) and the ring that picks one per
    key. A replica that fails is taken off the ring until the health service says it serves again."""

    address: str
    max_message_bytes: int
    credentials: grpc.ChannelCredentials | None = None
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    ring: ReplicaRing | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self, failed: str | None = None) -> list[str]:
        """Re-resolve the address; keep the replicas whose health is SERVING (``failed`` is checked again)."""
        async with self._lock:
            endpoints = await asyncio.to_thread(resolve, self.address)
            live = []
            for ep in endpoints:
                ch = self.channels.get(ep) or aio_channel(ep, self.max_message_bytes, self.credentials)
                self.channels[ep] = ch
                known = self.ring is not None and ep in self.ring.endpoints and ep != failed
                if known or await health_status(ch, timeout_s=1.0) == "SERVING":
                    live.append(ep)
            if not live:
                raise ConnectionError(f"no serving replica behind {self.address}")
            if self.ring is None:
                self.ring = ReplicaRing(live)
            else:
                self.ring.update(live)
            return live

    async def channel_for(self, key: str) -> tuple[str, grpc.aio.Channel]:
        if self.ring is None:
            await self.refresh()
        assert self.ring is not None
        ep = self.ring.owner(key)
        return ep, self.channels[ep]

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()


@dataclass
class ServiceClients:
    channels: dict[str, grpc.aio.Channel]
    detection: detection_pb2_grpc.DetectionServiceStub
    tracking: tracking_pb2_grpc.TrackingServiceStub
    reid: reid_pb2_grpc.ReidServiceStub
    mapping: mapping_pb2_grpc.MappingServiceStub
    analytics: analytics_pb2_grpc.AnalyticsServiceStub
    metadata: tuple[tuple[str, str], ...]
    tracking_replicas: StageReplicas
    reid_replicas: StageReplicas

    @classmethod
    def connect(cls, s: GatewaySettings) -> ServiceClients:
        addrs = {
            "detection": s.detection_svc_addr,
            "tracking": s.tracking_svc_addr,
            "reid": s.reid_svc_addr,
            "mapping": s.mapping_svc_addr,
            "analytics": s.analytics_svc_addr,
        }
        tls = channel_credentials(s)
        ch = {name: aio_channel(addr, s.max_message_bytes, tls) for name, addr in addrs.items()}
        return cls(
            ch,
            detection_pb2_grpc.DetectionServiceStub(ch["detection"]),
            tracking_pb2_grpc.TrackingServiceStub(ch["tracking"]),
            reid_pb2_grpc.ReidServiceStub(ch["reid"]),
            mapping_pb2_grpc.MappingServiceStub(ch["mapping"]),
            analytics_pb2_grpc.AnalyticsServiceStub(ch["analytics"]),
            metadata(s.service_key or None),  # the gateway's own key, never a client's
            StageReplicas(s.tracking_svc_addr, s.max_message_bytes, tls),
            StageReplicas(s.reid_svc_addr, s.max_message_bytes, tls),
        )

    async def tracking_for(self, key: str) -> tuple[str, tracking_pb2_grpc.TrackingServiceStub]:
        """The tracking replica that owns ``key`` (``session/camera``) and a stub on it."""
        ep, ch = await self.tracking_replicas.channel_for(key)
        return ep, tracking_pb2_grpc.TrackingServiceStub(ch)

    async def reid_for(self, session_id: str) -> tuple[str, reid_pb2_grpc.ReidServiceStub]:
        """The reid replica that holds this session's gallery (Associate) and a stub on it."""
        ep, ch = await self.reid_replicas.channel_for(session_id)
        return ep, reid_pb2_grpc.ReidServiceStub(ch)

    async def health(self) -> dict[str, str]:
        return {name: await health_status(ch, timeout_s=1.0) for name, ch in self.channels.items()}

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
        await self.tracking_replicas.close()
        await self.reid_replicas.close()
