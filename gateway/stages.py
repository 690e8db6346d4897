"""The pipeline's gRPC stages: each owns its stream(s) to one service and moves ``StepWork`` from one queue to the
next. Requests and merges are the pure functions of ``gateway.requests``; streams are ``StageLink``s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc

from gateway.clients import ServiceClients
from gateway.identity_embed import IdentityEmbedder
from gateway.link import StageLink, drive
from gateway.options import SessionConfig
from gateway.requests import (
    ThumbnailPolicy,
    TrackIdOffsets,
    associate_final,
    associate_request,
    associate_start,
    choose_identity,
    detect_request,
    embed_request,
    identity_embed_request,
    merge_associate,
    merge_detect,
    merge_embed,
    merge_identity_embed,
    merge_project,
    no_tracking_embeddings,
    project_request,
    track_request,
    track_start,
)
from gateway.schedule import DetectionCarrier, DetectionSchedule, FlowPredictor
from gateway.settle import Settlement
from gateway.work import CameraInput, StepWork
from spoton.v1 import tracking_pb2


class Stages:
    """The stages of one session; ``on_reconnect(stage, error)`` is told when a stage's stream is reopened."""

    def __init__(
        self,
        session_id: str,
        clients: ServiceClients,
        config: SessionConfig,
        on_reconnect: Callable[[str, str], None],
        schedule: DetectionSchedule,
    ) -> None:
        self.session_id = session_id
        self.clients = clients
        self.config = config
        self.on_reconnect = on_reconnect
        self.schedule = schedule
        self.identity = IdentityEmbedder(config.identity)

    def _link(self, name: str, open_call, on_failure=None) -> StageLink:  # type: ignore[no-untyped-def]
        return StageLink(name, open_call, self.config.stage_reconnect_timeout_s, self.on_reconnect, on_failure)

    async def detect(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.detection.DetectStream(metadata=self.clients.metadata)

        def request(work: StepWork):  # type: ignore[no-untyped-def]
            """The schedule decides which cameras are detected this step."""
            for cam in work.cameras:
                cam.detected = self.schedule.decide(cam.camera_id, cam.thumb)
                cam.next_skipped = self.schedule.next_skipped(cam.camera_id)
                cam.thumb = None
            return detect_request(work)

        await drive(self._link("detect", open_call), inp, out, request, merge_detect)

    async def tracker_uses_embeddings(self) -> bool:
        """Whether the session's tracker takes a per-detection appearance cue (TrackingService.ListTrackers).
        When tracking cannot say (away at the start), tracking embeddings are computed: a tracker that needs none
        ignores them, one that needs them would fail without."""
        try:
            reply = await self.clients.tracking.ListTrackers(
                tracking_pb2.ListTrackersRequest(), timeout=self.config.rpc_timeout_s, metadata=self.clients.metadata
            )
        except grpc.aio.AioRpcError:
            return True
        name = self.config.tracker or reply.default_tracker
        return any(t.name == name and t.uses_embeddings for t in reply.trackers)

    async def embed(self, inp: asyncio.Queue, out: asyncio.Queue, needed: bool) -> None:
        """Tracking embeddings of every detection, only when the tracker uses them (``needed``); otherwise the
        steps pass on with none and reid computes nothing here."""
        if not needed:
            while (work := await inp.get()) is not None:
                no_tracking_embeddings(work)
                await out.put(work)
            await out.put(None)
            return

        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.reid.EmbedStream(metadata=self.clients.metadata)

        await drive(self._link("embed", open_call), inp, out, embed_request, merge_embed)

    async def identity_embed(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        """Identity embeddings of the tracks the budget chooses (``gateway.identity_embed``), after tracking."""

        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.reid.EmbedStream(metadata=self.clients.metadata)

        def request(work: StepWork):  # type: ignore[no-untyped-def]
            choose_identity(work, self.identity)
            return identity_embed_request(work)

        def merge(work: StepWork, reply) -> None:  # type: ignore[no-untyped-def]
            merge_identity_embed(work, reply, self.identity)

        await drive(self._link("identity_embed", open_call), inp, out, request, merge)

    def _track_link(self, cam_id: str, fps: float) -> StageLink:
        """A camera's Track stream, on the tracking replica that owns ``session/camera``."""
        endpoint = ""

        async def open_call():  # type: ignore[no-untyped-def]
            nonlocal endpoint
            endpoint, stub = await self.clients.tracking_for(f"{self.session_id}/{cam_id}")
            call = stub.Track(metadata=self.clients.metadata)
            c = self.config
            await call.write(track_start(self.session_id, cam_id, c.tracker, dict(c.tracker_options), fps))
            return call

        async def on_failure() -> None:
            await self.clients.tracking_replicas.refresh(failed=endpoint or None)

        return self._link("track", open_call, on_failure)

    async def track(self, inp: asyncio.Queue, out: asyncio.Queue, fps: dict[str, float]) -> None:
        """One Track stream per camera. When a replica is lost the camera moves to another one and its tracker
        starts afresh there (``TrackIdOffsets``)."""
        links = {c: self._track_link(c, f) for c, f in fps.items()}
        offsets = TrackIdOffsets()
        policy = self.config.schedule
        carrier = DetectionCarrier() if policy.carries_detections else None
        flow = FlowPredictor() if policy.uses_flow and carrier is None else None

        async def one(cam: CameraInput) -> None:
            link = links[cam.camera_id]
            carried = None
            if carrier is not None and cam.grey is not None:
                wh = (cam.frame.width, cam.frame.height)
                carried = carrier.step(cam.camera_id, cam.grey, cam.detections, cam.embeddings, cam.detected, wh)
                cam.grey = None
                if carried is not None and not cam.detected:
                    # the tracks' det_index points into the carried detections: association gets their embeddings
                    # (a track first shown on a skipped frame is then not an identity without appearance)
                    cam.detections, cam.embeddings = carried
            births_next = carrier is not None and cam.detected and cam.next_skipped
            reply = await link.exchange(track_request(cam, None if cam.detected else carried, births_next))
            offsets.merge(cam, reply, link.generation)
            if cam.detected:
                self.schedule.observe(cam.camera_id, cam.tracks)
            if flow is not None and cam.grey is not None:
                wh = (cam.frame.width, cam.frame.height)
                cam.tracks = flow.step(cam.camera_id, cam.grey, cam.tracks, cam.detected, wh)
                cam.grey = None

        try:
            while (work := await inp.get()) is not None:
                t0 = time.perf_counter()
                await asyncio.gather(*(one(c) for c in work.cameras))
                work.stage_ms["track"] = (time.perf_counter() - t0) * 1000
                await out.put(work)
            for link in links.values():
                await link.close()
        finally:
            for link in links.values():
                link.cancel()
        await out.put(None)

    async def project(self, inp: asyncio.Queue, out: asyncio.Queue, video_set: str, calibrated: set[str]) -> None:
        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.mapping.ProjectStream(metadata=self.clients.metadata)

        def request(work: StepWork):  # type: ignore[no-untyped-def]
            return project_request(work, video_set, calibrated)

        await drive(self._link("project", open_call), inp, out, request, merge_project)

    async def associate(
        self, inp: asyncio.Queue, out: asyncio.Queue, video_set: str = "", person_search: bool = False
    ) -> None:
        """The session's Associate stream, on the reid replica that owns the session; the last stage, so each
        step leaves it with its ``StepResult``. ``person_search``: the video set's opt-in (see ``associate_start``)."""
        thumbnails = ThumbnailPolicy(enabled=self.config.collect_crops)
        max_gid = 0
        endpoint = ""

        async def open_call():  # type: ignore[no-untyped-def]
            nonlocal endpoint
            endpoint, stub = await self.clients.reid_for(self.session_id)
            call = stub.Associate(metadata=self.clients.metadata)
            await call.write(
                associate_start(self.session_id, self.config.association, max_gid, video_set, person_search)
            )
            return call

        async def on_failure() -> None:
            await self.clients.reid_replicas.refresh(failed=endpoint)

        last = (0, 0)  # (step, media time ns) of the last step sent

        def merge(work: StepWork, reply) -> None:  # type: ignore[no-untyped-def]
            nonlocal max_gid, last
            max_gid = max(max_gid, merge_associate(work, reply))
            work.settlement = Settlement.from_proto(reply, work.timestamp_ns)
            last = (work.step, work.timestamp_ns)
            work.finish(self.session_id)

        def request(work: StepWork):  # type: ignore[no-untyped-def]
            return associate_request(work, thumbnails, self.identity)

        async def final() -> StepWork | None:
            """The session's end: reid settles every open identity (window mode) in one last reply."""
            if not last[0]:
                return None
            reply = await link.exchange(associate_final(*last))
            work = StepWork(last[0], last[1], [], final=True)
            work.settlement = Settlement.from_proto(reply, last[1])
            return work

        link = self._link("associate", open_call, on_failure)
        await drive(link, inp, out, request, merge, final)
