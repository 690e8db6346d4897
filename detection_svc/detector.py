"""Person detector over Ultralytics YOLO: ``.pt`` (PyTorch), ``.onnx`` (ONNX Runtime or OpenVINO) and OpenVINO IR.

On the CPU, exported models run on our own runtime session (``detection_svc.runtimes``: thread pools, spinning and
hints are settable, a batch is one forward pass); on a GPU and for ``.pt`` files Ultralytics' AutoBackend picks
the runtime from the file. Letterboxing, NMS (class-agnostic: every configured class is a person) and rescaling to
the source image are Ultralytics' either way.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection_svc.runtimes import Runtime, RuntimeOptions, is_openvino_model, open_runtime
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


def backend_of(weights: Path) -> str:
    """The backend a weights file runs on by default: ``openvino`` (IR), ``onnx`` or ``torch``."""
    if is_openvino_model(weights):
        return "openvino"
    return "onnx" if weights.suffix == ".onnx" else "torch"


class Detector:
    """Thread-safe YOLO wrapper: ``detect(images) -> list[Detections]`` in source-image pixels.

    ``backend`` ``auto`` follows the file (``backend_of``); ``openvino`` also runs an ``.onnx`` file. ``batch`` is
    the most frames per forward pass (0 = 4 on CPU runtimes, 1 for PyTorch on CPU, 16 on GPU).
    """

    def __init__(
        self,
        weights: Path,
        input_wh: tuple[int, int],
        device: str = "auto",
        class_ids: list[int] | None = None,
        batch: int = 0,
        threads: int = 0,
        tile_wh: tuple[int, int] | None = None,
        backend: str = "auto",
        runtime: RuntimeOptions | None = None,
    ) -> None:
        self.weights = Path(weights)
        backend = backend_of(self.weights) if backend == "auto" else backend
        self.device = "cpu" if backend == "openvino" else pick_device(device)
        self.input_wh = input_wh
        self.class_ids = class_ids
        self.tile_wh = tile_wh
        self._sahi = None
        self._yolo = None
        self._lock = threading.Lock()
        self.runtime: Runtime | None = None
        options = runtime or RuntimeOptions()
        threads = threads or options.threads
        if self.device == "cpu" and backend in ("onnx", "openvino"):
            self.runtime = open_runtime(self.weights, backend, dataclasses.replace(options, threads=threads))
            names, runtime_name = self.runtime.names, self.runtime.backend
            self.batch = self.runtime.static_batch or batch or 4
            if self.runtime.static_hw:  # a static export runs at its own size
                self.input_wh = self.runtime.static_hw[::-1]
        else:
            if threads:
                import torch

                torch.set_num_threads(threads)
            names, runtime_name = self.model.names or {}, "onnxruntime" if self.weights.suffix == ".onnx" else "torch"
            self.batch = batch or (1 if self.device == "cpu" else 16)
        self.info = DetectorInfo(
            name=self.weights.stem,
            weights_source=str(self.weights),
            backend=runtime_name,
            device=self.device,
            input_wh=self.input_wh,
            classes=[names[k] for k in sorted(names)] if isinstance(names, dict) else list(names),
        )

    @property
    def model(self):  # type: ignore[no-untyped-def]
        """Ultralytics' YOLO over the same file (PyTorch/GPU inference and SAHI tiling), loaded on first use."""
        if self._yolo is None:
            from ultralytics import YOLO

            self._yolo = YOLO(str(self.weights), task="detect")
        return self._yolo

    def warmup(self) -> None:
        """One frame, and on a CPU runtime one full batch too (OpenVINO compiles each batch size once)."""
        w, h = self.input_wh
        for n in dict.fromkeys((1, self.batch if self.runtime is not None else 1)):
            self.detect([np.zeros((h, w, 3), np.uint8)] * n, conf=0.25, iou=0.5, max_det=10)

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
            if self.runtime is not None:
                for i in range(0, len(images), self.batch):
                    out.extend(self._detect_runtime(images[i : i + self.batch], conf, iou, max_det))
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

    def _detect_runtime(self, images: list[np.ndarray], conf: float, iou: float, max_det: int) -> list[Detections]:
        """One forward pass of our CPU runtime over ``images``, with Ultralytics' letterbox, NMS and rescaling."""
        import torch
        from ultralytics.data.augment import LetterBox
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import scale_boxes

        w, h = self.input_wh
        letterbox = LetterBox((h, w), auto=False, stride=32)
        batch = np.stack([letterbox(image=image) for image in images])[..., ::-1].transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(batch, dtype=np.float32)
        x *= 1.0 / 255.0
        preds = torch.from_numpy(np.asarray(self.runtime(x)))
        kept = non_max_suppression(preds, conf, iou, self.class_ids, agnostic=True, max_det=max_det)
        out = []
        for d, image in zip(kept, images, strict=True):
            xyxy = scale_boxes((h, w), d[:, :4].clone(), image.shape)
            out.append(Detections(xyxy.numpy(), d[:, 4].numpy(), d[:, 5].numpy()))
        return out

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
