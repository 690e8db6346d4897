"""ReidService: embeddings (stateless) and per-session identity galleries (stateful)."""

from __future__ import annotations

import asyncio

import numpy as np
from google.protobuf import json_format

from reid_svc.config import ReidSettings
from reid_svc.embedders import MobileNetV2Embedder, build_embedder
from reid_svc.identity import AssociationOptions, IdentityGallery, Observation
from spoton.bootstrap.device import pick_device
from spoton.bootstrap.errors import NotFoundError, UnavailableError, stream_errors, unary_errors
from spoton.bootstrap.server import COMPUTE_SECONDS
from spoton.domain import array_to_tensor, boxes_from_proto, tensor_to_array
from spoton.frames import decode_frame
from spoton.v1 import common_pb2, reid_pb2, reid_pb2_grpc


class ReidServicer(reid_pb2_grpc.ReidServiceServicer):
    def __init__(self, settings: ReidSettings) -> None:
        self.settings = settings
        self.embedder: MobileNetV2Embedder | None = None
        self.galleries: dict[str, IdentityGallery] = {}
        self.default_options = AssociationOptions(
            match_threshold=settings.reid_match_threshold,
            reentry_threshold=settings.reid_reentry_threshold,
            max_floor_distance_m=settings.reid_max_floor_distance_m,
            max_speed_mps=settings.reid_max_speed_mps,
            retire_after_s=settings.reid_retire_after_s,
        )

    async def load(self) -> None:
        s = self.settings
        device = pick_device(s.device)
        self.embedder = await asyncio.to_thread(
            build_embedder, s.reid_model_type, s.reid_weights, s.input_wh, device, s.reid_backend, s.reid_threads
        )

    def _ready(self) -> MobileNetV2Embedder:
        if self.embedder is None:
            raise UnavailableError("embedder is still loading")
        return self.embedder

    async def _embed(self, frame: common_pb2.Frame, boxes) -> np.ndarray:  # type: ignore[no-untyped-def]
        embedder = self._ready()
        xyxy = boxes_from_proto(boxes)
        if not len(xyxy):
            return np.zeros((0, embedder.info.embedding_dim), np.float32)
        image = decode_frame(frame)
        emb, _ = await asyncio.to_thread(embedder.embed_boxes, image, xyxy)
        return emb

    @unary_errors
    async def Embed(self, request, context):
        return reid_pb2.EmbedResponse(embeddings=array_to_tensor(await self._embed(request.frame, request.boxes)))

    @stream_errors
    async def EmbedStream(self, request_iterator, context):
        loop = asyncio.get_running_loop()
        async for request in request_iterator:
            start = loop.time()
            with COMPUTE_SECONDS.labels("EmbedStream").time():
                tensors = [array_to_tensor(await self._embed(item.frame, item.boxes)) for item in request.items]
            yield reid_pb2.EmbedStreamResponse(
                step=request.step, embeddings=tensors, inference_ms=(loop.time() - start) * 1000
            )

    @unary_errors
    async def GetModelInfo(self, request, context):
        info = self._ready().info
        return reid_pb2.ReidServiceGetModelInfoResponse(
            info=common_pb2.ModelInfo(
                name=info.name,
                task="reid",
                input_size=list(info.input_wh),
                embedding_dim=info.embedding_dim,
                device=info.device,
                backend=info.backend,
                weights_source=info.weights_source,
            )
        )

    def _gallery(self, session_id: str) -> IdentityGallery:
        if not session_id:
            raise ValueError("session_id is required")
        try:
            return self.galleries[session_id]
        except KeyError:
            raise NotFoundError(f"no gallery for session {session_id!r}") from None

    @stream_errors
    async def Associate(self, request_iterator, context):
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if first.WhichOneof("payload") != "start":
            raise ValueError("the first Associate message must be an AssociateStart")
        start = first.start
        if not start.session_id:
            raise ValueError("AssociateStart.session_id is required")
        gallery = self.galleries.get(start.session_id)
        if gallery is None:
            values = json_format.MessageToDict(start.options) if start.HasField("options") else {}
            gallery = IdentityGallery(AssociationOptions.from_dict(self.default_options, values))
            self.galleries[start.session_id] = gallery
        async for request in request_iterator:
            if request.WhichOneof("payload") != "step":
                raise ValueError("only AssociateStep messages may follow the AssociateStart")
            step = request.step
            observations = []
            for ob in step.observations:
                emb = tensor_to_array(ob.embedding).reshape(-1) if ob.HasField("embedding") else None
                floor = np.array([ob.floor.x_m, ob.floor.y_m]) if ob.HasField("floor") else None
                if floor is not None and not np.isfinite(floor).all():
                    raise ValueError("floor points must be finite")
                if emb is not None and emb.size and not np.isfinite(emb).all():
                    raise ValueError("embeddings must be finite")
                observations.append(
                    Observation(ob.camera_id, ob.track_id, ob.timestamp_ns or step.timestamp_ns, emb, floor)
                )
            with COMPUTE_SECONDS.labels("Associate").time():
                assignments = gallery.step(observations)
            yield reid_pb2.AssociateResponse(
                step=step.step,
                assignments=[reid_pb2.Assignment(camera_id=c, track_id=t, global_id=g) for c, t, g in assignments],
            )

    @unary_errors
    async def MergeIdentities(self, request, context):
        gid = self._gallery(request.session_id).merge(request.into_global_id, request.from_global_id)
        return reid_pb2.MergeIdentitiesResponse(global_id=gid)

    @unary_errors
    async def SplitTrack(self, request, context):
        gid = self._gallery(request.session_id).split(request.camera_id, request.track_id)
        return reid_pb2.SplitTrackResponse(new_global_id=gid)

    @unary_errors
    async def ResetGallery(self, request, context):
        gallery = self._gallery(request.session_id)
        removed = len(gallery.persons)
        del self.galleries[request.session_id]
        return reid_pb2.ResetGalleryResponse(persons_removed=removed)

    @unary_errors
    async def GetGalleryStats(self, request, context):
        return reid_pb2.GetGalleryStatsResponse(**self._gallery(request.session_id).stats())
