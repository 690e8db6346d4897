"""TrackingService: one Track stream = one camera of one session."""

from __future__ import annotations

from google.protobuf import json_format, struct_pb2

from spoton.bootstrap.errors import stream_errors, unary_errors
from spoton.bootstrap.server import COMPUTE_SECONDS
from spoton.domain import Detections, tensor_to_array
from spoton.v1 import tracking_pb2, tracking_pb2_grpc
from tracking_svc.config import TrackingSettings
from tracking_svc.trackers import TrackerRegistry, available_trackers, default_options, uses_embeddings


class TrackingServicer(tracking_pb2_grpc.TrackingServiceServicer):
    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self.registry = TrackerRegistry(settings.tracker_resume_grace_s, settings.track_box_blend)

    @stream_errors
    async def Track(self, request_iterator, context):
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if first.WhichOneof("payload") != "start":
            raise ValueError("the first Track message must be a TrackStart")
        start = first.start
        name = start.tracker_type or self.settings.tracker_type
        options = json_format.MessageToDict(start.options) if start.HasField("options") else {}
        tracker, resumed = self.registry.acquire(start.session_id, start.camera_id, name, options, start.fps)
        try:
            async for request in request_iterator:
                if request.WhichOneof("payload") != "frame":
                    raise ValueError("only TrackFrame messages may follow the TrackStart")
                frame = request.frame
                size = (frame.width, frame.height)
                if frame.predict_only:
                    if len(frame.detections) or frame.embeddings.data:
                        raise ValueError("a predict_only frame carries no detections or embeddings")
                    with COMPUTE_SECONDS.labels("Track").time():
                        tracks = tracker.predict(size, frame.frame_index, frame.timestamp_ns)
                else:
                    dets = Detections.from_proto(frame.detections)
                    emb = tensor_to_array(frame.embeddings) if frame.HasField("embeddings") else None
                    with COMPUTE_SECONDS.labels("Track").time():
                        tracks = tracker.update(
                            dets, emb, size, frame.frame_index, frame.timestamp_ns, frame.births_confirmed_next
                        )
                yield tracking_pb2.TrackResponse(
                    camera_id=start.camera_id,
                    frame_index=frame.frame_index,
                    timestamp_ns=frame.timestamp_ns,
                    tracks=tracks.to_proto(),
                    resumed=resumed,
                )
                resumed = False
        finally:
            self.registry.release(start.session_id, start.camera_id)

    @unary_errors
    async def ListTrackers(self, request, context):
        infos = []
        for name in available_trackers():
            opts = struct_pb2.Struct()
            opts.update({k: v for k, v in default_options(name).items() if isinstance(v, (int, float, str, bool))})
            infos.append(
                tracking_pb2.TrackerInfo(name=name, uses_embeddings=uses_embeddings(name), default_options=opts)
            )
        return tracking_pb2.ListTrackersResponse(trackers=infos, default_tracker=self.settings.tracker_type)
