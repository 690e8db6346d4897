"""Detection service settings (DESIGN §7)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pydantic import Field

from detection_svc.runtimes import RuntimeOptions
from spoton.bootstrap.device import INT8_DOT_PRODUCT_FLAGS, cpu_flags
from spoton.bootstrap.settings import CommonSettings, parse_wh

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# The setup step's files (spoton/setup_weights.py) per (backend, precision).
DEFAULT_WEIGHTS = {
    ("onnx", "fp32"): "best.onnx",
    ("onnx", "int8"): "best_int8.onnx",
    ("openvino", "fp32"): "best_openvino_model",
    ("openvino", "int8"): "best_int8_openvino_model",
    ("openvino", "int8w7"): "best_int8w7_openvino_model",
    ("torch", "fp32"): "best.pt",
}
# The short names bench/detection_eval.py and bench/detection_speed.py take -> (backend, precision).
SHORT_NAMES = {
    "onnx": ("onnx", "fp32"),
    "int8": ("onnx", "int8"),
    "ov": ("openvino", "fp32"),
    "ov-int8": ("openvino", "int8"),
    "ov-int8w7": ("openvino", "int8w7"),
    "torch": ("torch", "fp32"),
}


# DETECTOR_PRECISION: int8 = the 8-bit-weight INT8 model (OpenVINO's or ONNX Runtime's); int8w7 = OpenVINO's 7-bit-
# weight one (NNCF's overflow fix for CPUs without VNNI, see spoton/setup_weights.py); int8w8 = int8.
PRECISIONS = ("auto", "fp32", "int8", "int8w8", "int8w7")


def model_keys(backend: str, precision: str) -> list[str]:
    """The ``DEFAULT_WEIGHTS`` precisions that serve ``precision`` on ``backend``, best first.

    OpenVINO has two INT8 models: 8-bit weights (NNCF's default, overflow fix on the first layer) and 7-bit weights
    (overflow fix on every layer), for CPUs without VNNI whose 16-bit intermediate sums can saturate with 8-bit
    weights. Measured on an AVX2 EPYC (README, "Detector on a CPU") the 8-bit model kept recall at least as well,
    so ``int8`` means it on every CPU and the 7-bit one is asked for by name. ONNX Runtime has one INT8 model."""
    if precision == "fp32":
        return ["fp32"]
    if precision == "int8w7":
        return ["int8w7"] if backend == "openvino" else []
    return ["int8"]


def cpu_choice(flags: frozenset[str]) -> tuple[str, str]:
    """``DETECTOR_BACKEND=auto`` on a CPU: (backend, precision) by the CPU's features. Measured with
    bench/detection_eval.py on PETS (README, "Detector on a CPU"), CPU ms per frame at one thread:

    - AMX (amx_bf16): OpenVINO INT8 (NNCF), 42 ms, the cost of the FP32 model that OpenVINO computes in bf16
      there (43). On detection alone they tie (demo cameras 0.918 / 0.896 vs 0.920 / 0.898; PETS 0.698 / 0.712 vs
      0.709 / 0.728), but through the whole pipeline (tests/test_e2e.py's window) INT8 keeps same-person precision
      / recall at 0.896 / 0.816 where bf16 gave 0.855 / 0.749 (ONNX Runtime INT8: 0.855 / 0.750).
    - VNNI without AMX (avx512_vnni, avx_vnni): OpenVINO INT8, 2.6x cheaper than FP32 (58 vs 149 ms).
    - AVX2 without VNNI: OpenVINO INT8 (8-bit weights), about 0.53x the CPU of OpenVINO FP32 on an AVX2 EPYC (168
      vs 316 ms) at PETS recall 0.693 vs 0.704; through the pipeline on tests/test_e2e.py's window per-camera recall
      .744/.863/.825/.870 vs f32 .731/.856/.834/.845. The 7-bit-weight model (NNCF's overflow fix, for the
      saturating 16-bit sums of these CPUs) cost the same and lost cam1 recall there (0.682): the saturation it
      guards against did not show on this model.
    - Anything else (no AVX2, non-x86): ONNX Runtime FP32, the portable path.
    """
    if INT8_DOT_PRODUCT_FLAGS & flags or "amx_bf16" in flags or "avx2" in flags:
        return "openvino", "int8"
    return "onnx", "fp32"


class DetectionSettings(CommonSettings):
    port: int = Field(50051, validation_alias="DETECTION_SVC_PORT")
    metrics_port: int = Field(9101, validation_alias="DETECTION_SVC_METRICS_PORT")
    # auto = on a CPU the (backend, precision) of ``cpu_choice`` (OpenVINO INT8 with AVX2, VNNI or AMX; else ONNX
    # Runtime FP32), falling back to ONNX Runtime when
    # OpenVINO or its files are missing; on a GPU the ONNX model through Ultralytics (CUDA). torch | onnx | openvino
    # force a runtime.
    detector_backend: str = "auto"
    # auto = the precision of the CPU table for OpenVINO; INT8 with VNNI/AMX for ONNX Runtime (2.4x faster than its
    # FP32 at the same recall; without VNNI its INT8 loses accuracy); fp32 | int8 force (int8w7: OpenVINO's
    # 7-bit-weight model; int8w8 = int8).
    detector_precision: str = "auto"
    # Empty = the setup step's file for the chosen backend and precision (DEFAULT_WEIGHTS), else best.pt. A user
    # .onnx runs on ONNX Runtime or (DETECTOR_BACKEND=openvino) OpenVINO; a *_openvino_model/ folder on OpenVINO.
    detector_weights: str = ""
    # Comma-separated class ids counted as people; empty = every class of the model. The default model's class 0
    # ("Normal") alone: on the demo cameras recall 0.904 vs 0.906 with both, precision 0.858 vs 0.707 (its
    # "Fall" class fires on a yellow cloth in every frame); bench/detection_eval.py measures it.
    detector_classes: str = "0"
    # "W" or "WxH" network input in pixels.
    detector_input_size: str = "640x480"
    detection_confidence_threshold: float = 0.25
    detection_iou_threshold: float = 0.5
    detection_max_detections: int = 100
    # Frames per forward pass; 0 = 4 on the CPU runtimes (one call per DetectStream message of four cameras), 1 for
    # PyTorch on CPU, 16 on GPU.
    detector_batch: int = 0
    # CPU runtime threads: ONNX Runtime intra-op / OpenVINO INFERENCE_NUM_THREADS (0 = every core this process may
    # use: the detector is the pipeline's longest stage, and one thread left the other core idle — through every
    # service on the AVX2 EPYC, 200 steps, 2 threads 17.4 vs 10.5 camera-frames/s at the same CPU per step, 417 vs
    # 435 ms), ONNX Runtime inter-op, busy-waiting between runs,
    # OpenVINO's performance hint (LATENCY | THROUGHPUT), streams (0 = the hint's choice), float precision ("" =
    # OpenVINO's default: bf16 on CPUs with AMX/AVX-512 BF16, f32 elsewhere; f32 | bf16) and thread pinning.
    # Measured on the 2-core Xeon under load (bench/detection_eval.py, CPU ms per frame, README): 1 thread cost
    # 24-28 % less CPU than 2 for OpenVINO there (set DETECTOR_THREADS=1 on a host busy with other work);
    # spinning costs ORT 69 % more CPU; unpinned OpenVINO threads 8 % less than pinned ones.
    detector_threads: int = 0
    detector_inter_threads: int = 1
    detector_spinning: bool = False
    detector_ov_hint: str = "LATENCY"
    detector_ov_streams: int = 0
    detector_ov_precision: str = ""
    detector_ov_pinning: bool = False
    # "WxH" slices for SAHI tiled inference (small, distant people); empty = whole frames only.
    detector_tile_size: str = ""
    # Largest frame accepted, in pixels (bounded memory), and the most frames in one batch.
    detector_max_pixels: int = 4096 * 4096
    detector_max_batch_frames: int = 64

    @property
    def tile_wh(self) -> tuple[int, int] | None:
        return parse_wh(self.detector_tile_size, "DETECTOR_TILE_SIZE", 1) if self.detector_tile_size else None

    @property
    def input_wh(self) -> tuple[int, int]:
        return parse_wh(self.detector_input_size, "DETECTOR_INPUT_SIZE")

    @property
    def class_ids(self) -> list[int] | None:
        ids = [int(c) for c in self.detector_classes.split(",") if c.strip()]
        return ids or None

    @property
    def runtime_options(self) -> RuntimeOptions:
        if self.detector_ov_hint not in ("LATENCY", "THROUGHPUT"):
            raise ValueError(f"DETECTOR_OV_HINT must be LATENCY or THROUGHPUT, got {self.detector_ov_hint!r}")
        if self.detector_ov_precision not in ("", "f32", "bf16"):
            raise ValueError(f"DETECTOR_OV_PRECISION must be empty, f32 or bf16, got {self.detector_ov_precision!r}")
        return RuntimeOptions(
            self.detector_threads or len(os.sched_getaffinity(0)),
            self.detector_inter_threads,
            self.detector_spinning,
            self.detector_ov_hint,
            self.detector_ov_streams,
            self.detector_ov_precision,
            self.detector_ov_pinning,
        )

    def resolve_weights(self) -> Path:
        """The weights file to load (see ``resolve``)."""
        return self.resolve()[1]

    def resolve(self) -> tuple[str, Path]:
        """(backend, weights) to load: ``torch`` | ``onnx`` | ``openvino`` and the configured path, else the setup
        step's file for the backend and precision ``DETECTOR_BACKEND``/``DETECTOR_PRECISION`` choose."""
        if self.detector_backend not in ("auto", "torch", "onnx", "openvino"):
            raise ValueError(f"DETECTOR_BACKEND must be auto, torch, onnx or openvino, got {self.detector_backend!r}")
        if self.detector_precision not in PRECISIONS:
            raise ValueError(
                f"DETECTOR_PRECISION must be one of {', '.join(PRECISIONS)}, got {self.detector_precision!r}"
            )
        cpu = self.device == "cpu" or (self.device in ("", "auto") and _visible_device() == "cpu")
        flags = cpu_flags() if cpu else frozenset()
        table_backend, table_precision = cpu_choice(flags) if cpu else ("onnx", "fp32")
        openvino = importlib.util.find_spec("openvino") is not None
        if self.detector_weights:
            from detection_svc.detector import backend_of

            path = Path(self.detector_weights)
            if not path.is_absolute() and not path.exists():
                path = WEIGHTS_DIR / path
            if not path.exists():
                raise FileNotFoundError(f"DETECTOR_WEIGHTS {self.detector_weights} not found")
            backend = self.detector_backend
            if backend == "auto":
                own = backend_of(path)
                backend = "openvino" if own == "onnx" and table_backend == "openvino" and openvino else own
            return backend, path
        candidates = {
            "auto": list(dict.fromkeys([table_backend, "onnx"])) if openvino else ["onnx"],
            "onnx": ["onnx"],
            "openvino": ["openvino"],
            "torch": [],
        }[self.detector_backend]
        if self.detector_precision.startswith("int8"):
            for backend in candidates:
                for key in model_keys(backend, self.detector_precision):
                    if (path := WEIGHTS_DIR / DEFAULT_WEIGHTS[backend, key]).exists():
                        return backend, path
            raise FileNotFoundError(
                f"DETECTOR_PRECISION={self.detector_precision} but no such INT8 model for {candidates}: "
                "run `make weights`"
            )
        # ONNX Runtime has no bf16 path: INT8 wherever the CPU has VNNI/AMX (2.4x faster than its FP32, same recall).
        ort_int8 = bool(INT8_DOT_PRODUCT_FLAGS & flags)
        auto = {"openvino": table_precision, "onnx": "int8" if ort_int8 else "fp32"}
        # The table's backend before its precision: a missing INT8 file (no demo video at setup) falls back to FP32
        # on the same runtime.
        for backend in candidates:
            wanted = auto[backend] if self.detector_precision == "auto" else self.detector_precision
            for key in dict.fromkeys((*model_keys(backend, wanted), "fp32")):
                if (path := WEIGHTS_DIR / DEFAULT_WEIGHTS[backend, key]).exists():
                    return backend, path
        if self.detector_backend == "openvino":
            raise FileNotFoundError(f"DETECTOR_BACKEND=openvino but {WEIGHTS_DIR} has no IR: run `make weights`")
        pt = WEIGHTS_DIR / "best.pt"
        if pt.exists():
            return "torch", pt
        raise FileNotFoundError(f"no detector weights in {WEIGHTS_DIR}: run `make weights` first")


def _visible_device() -> str:
    from spoton.bootstrap.device import pick_device

    return pick_device("auto")
