"""Person detector over Ultralytics YOLO: one code path for ``.pt`` (PyTorch) and ``.onnx`` (ONNX Runtime).

Ultralytics' AutoBackend picks the runtime from the file; letterboxing, NMS (class-agnostic: every configured
class is a person) and rescaling to the source image are the library's.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spoton.bootstrap.device import pick_device
from spoton.domain import Detections

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    weights_source: str
    backend: str
    device: str
    input_wh: tuple[int, int]
    classes: list[str]


class Detector:
    """Thread-safe YOLO wrapper: ``detect(images) -> list[Detections]`` in source-image pixels."""

    def __init__(
        self,
        weights: Path,
        input_wh: tuple[int, int],
        device: str = "auto",
        class_ids: list[int] | None = None,
        batch: int = 0,
        threads: int = 0,
        tile_wh: tuple[int, int] | None = None,
    ) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from ultralytics import YOLO

        self.weights = Path(weights)
        self.device = pick_device(device)
        self.model = YOLO(str(weights), task="detect")
        self.input_wh = input_wh
        self.class_ids = class_ids
        self.batch = batch or (1 if self.device == "cpu" else 16)
        self.tile_wh = tile_wh
        self._sahi = None
        self._lock = threading.Lock()
        names = self.model.names or {}
        self.info = DetectorInfo(
            name=self.weights.stem,
            weights_source=str(self.weights),
            backend="onnxruntime" if self.weights.suffix == ".onnx" else "torch",
            device=self.device,
            input_wh=input_wh,
            classes=[names[k] for k in sorted(names)] if isinstance(names, dict) else list(names),
        )

    def warmup(self) -> None:
        w, h = self.input_wh
        self.detect([np.zeros((h, w, 3), np.uint8)], conf=0.25, iou=0.5, max_det=10)

    def detect(self, images: list[np.ndarray], conf: float, iou: float, max_det: int) -> tuple[list[Detections], float]:
        """Detect people in BGR uint8 images.

        Returns:
            One ``Detections`` per image (pixels of that image) and the compute time in milliseconds.
        """
        out: list[Detections] = []
        start = time.perf_counter()
        with self._lock:
            if self.tile_wh:
                out = [self._detect_tiled(image, conf, iou, max_det) for image in images]
                return out, (time.perf_counter() - start) * 1000.0
            for i in range(0, len(images), self.batch):
                results = self.model.predict(
                    images[i : i + self.batch],
                    imgsz=(self.input_wh[1], self.input_wh[0]),
                    conf=conf,
                    iou=iou,
                    max_det=max_det,
                    classes=self.class_ids,
                    agnostic_nms=True,
                    device=self.device,
                    half=self.device.startswith("cuda") and self.weights.suffix == ".pt",
                    verbose=False,
                )
                for r in results:
                    boxes = r.boxes
                    out.append(Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy()))
        return out, (time.perf_counter() - start) * 1000.0

    def _detect_tiled(self, image: np.ndarray, conf: float, iou: float, max_det: int) -> Detections:
        """SAHI sliced inference (overlapping tiles plus the whole frame, merged) for small, distant people."""
        from sahi import AutoDetectionModel
        from sahi.predict import get_sliced_prediction

        if self._sahi is None:
            self._sahi = AutoDetectionModel.from_pretrained(
                model_type="ultralytics",
                model=self.model,
                device=self.device,
                confidence_threshold=conf,
                image_size=max(self.input_wh),
            )
        self._sahi.confidence_threshold = conf
        names = self.model.names or {}
        excluded = [k for k in names if self.class_ids is not None and k not in self.class_ids]
        result = get_sliced_prediction(
            np.ascontiguousarray(image[..., ::-1]),
            self._sahi,
            slice_height=self.tile_wh[1],
            slice_width=self.tile_wh[0],
            overlap_height_ratio=0.2,
            overlap_width_ratio=0.2,
            perform_standard_pred=True,
            postprocess_type="NMS",
            postprocess_match_metric="IOU",
            postprocess_match_threshold=iou,
            postprocess_class_agnostic=True,
            verbose=0,
            exclude_classes_by_id=excluded or None,
        )
        preds = result.object_prediction_list[:max_det]
        if not preds:
            return Detections.empty()
        xyxy = np.array([p.bbox.to_xyxy() for p in preds], np.float32)
        return Detections(xyxy, [p.score.value for p in preds], [p.category.id for p in preds])
