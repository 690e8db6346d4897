"""DetectionService: proto <-> domain; the model runs in a worker thread so health stays responsive."""

from __future__ import annotations

import asyncio

from detection_svc.config import DetectionSettings
from detection_svc.detector import Detector
from spoton.bootstrap.errors import UnavailableError, stream_errors, unary_errors
from spoton.bootstrap.server import COMPUTE_SECONDS
from spoton.frames import decode_frame
from spoton.v1 import common_pb2, detection_pb2, detection_pb2_grpc


class DetectionServicer(detection_pb2_grpc.DetectionServiceServicer):
    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self.detector: Detector | None = None

    async def load(self) -> None:
        s = self.settings

        def build() -> Detector:
            backend, weights = s.resolve()
            det = Detector(
                weights,
                s.input_wh,
                s.device,
                s.class_ids,
                s.detector_batch,
                tile_wh=s.tile_wh,
                backend=backend,
                runtime=s.runtime_options,
            )
            det.warmup()
            return det

        self.detector = await asyncio.to_thread(build)

    def _ready(self) -> Detector:
        if self.detector is None:
            raise UnavailableError("detector is still loading")
        return self.detector

    def _thresholds(self, options: detection_pb2.DetectOptions) -> tuple[float, float, int]:
        s = self.settings
        conf = options.confidence_threshold or s.detection_confidence_threshold
        iou = options.iou_threshold or s.detection_iou_threshold
        max_det = options.max_detections or s.detection_max_detections
        if not (0.0 < conf <= 1.0 and 0.0 < iou <= 1.0 and max_det > 0):
            raise ValueError("thresholds must be in (0, 1] and max_detections > 0")
        return conf, iou, max_det

    async def _run(
        self, frames: list[common_pb2.Frame], options: detection_pb2.DetectOptions
    ) -> tuple[list[detection_pb2.FrameDetections], float]:
        detector = self._ready()
        conf, iou, max_det = self._thresholds(options)
        if not frames:
            raise ValueError("a batch needs at least one frame")
        if len(frames) > self.settings.detector_max_batch_frames:
            raise ValueError(f"at most {self.settings.detector_max_batch_frames} frames per batch, got {len(frames)}")
        images = [decode_frame(f, self.settings.detector_max_pixels) for f in frames]
        results, ms = await asyncio.to_thread(detector.detect, images, conf, iou, max_det)
        return [
            detection_pb2.FrameDetections(
                camera_id=f.camera_id,
                frame_index=f.frame_index,
                timestamp_ns=f.timestamp_ns,
                detections=d.to_proto(),
                width=img.shape[1],
                height=img.shape[0],
            )
            for f, img, d in zip(frames, images, results, strict=True)
        ], ms

    @unary_errors
    async def Detect(self, request, context):
        if not request.HasField("frame"):
            raise ValueError("DetectRequest.frame is required")
        results, ms = await self._run([request.frame], request.options)
        return detection_pb2.DetectResponse(result=results[0], inference_ms=ms)

    @stream_errors
    async def DetectStream(self, request_iterator, context):
        async for request in request_iterator:
            batch = request.batch
            with COMPUTE_SECONDS.labels("DetectStream").time():
                results, ms = await self._run(list(batch.frames), batch.options)
            yield detection_pb2.DetectStreamResponse(
                batch=detection_pb2.DetectionBatch(step=batch.step, frames=results, inference_ms=ms)
            )

    @unary_errors
    async def GetModelInfo(self, request, context):
        info = self._ready().info
        return detection_pb2.DetectionServiceGetModelInfoResponse(
            info=common_pb2.ModelInfo(
                name=info.name,
                task="detection",
                input_size=list(info.input_wh),
                classes=info.classes,
                device=info.device,
                backend=info.backend,
                weights_source=info.weights_source,
            )
        )
