"""Detection service settings (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from spoton.bootstrap.device import cpu_has_int8_dot_product
from spoton.bootstrap.settings import CommonSettings, parse_wh

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class DetectionSettings(CommonSettings):
    port: int = Field(50051, validation_alias="DETECTION_SVC_PORT")
    metrics_port: int = Field(9101, validation_alias="DETECTION_SVC_METRICS_PORT")
    detector_backend: str = "auto"  # auto | torch | onnx
    # auto = the INT8 model (weights/best_int8.onnx, made at setup) on a CPU with VNNI/AMX when present: 2.4x
    # faster than FP32 at the same recall/precision on PETS (0.711/0.721 vs 0.704/0.724, bench/detection_eval.py);
    # FP32 on other CPUs, where INT8 loses accuracy (spoton/bootstrap/device.py); fp32 | int8 force.
    detector_precision: str = "auto"
    # Empty = weights/best.onnx exported at setup if present (ONNX Runtime is 2x faster on CPU), else best.pt.
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
    # Frames per forward pass; 1 on CPU (batched ONNX inference measured slower there), larger on GPU.
    detector_batch: int = 0
    detector_threads: int = 0
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

    def resolve_weights(self) -> Path:
        """The weights file to load: the configured path, else the setup step's default."""
        if self.detector_weights:
            path = Path(self.detector_weights)
            if not path.is_absolute() and not path.exists():
                path = WEIGHTS_DIR / path
            if not path.exists():
                raise FileNotFoundError(f"DETECTOR_WEIGHTS {self.detector_weights} not found")
            return path
        onnx, int8, pt = WEIGHTS_DIR / "best.onnx", WEIGHTS_DIR / "best_int8.onnx", WEIGHTS_DIR / "best.pt"
        if self.detector_precision not in ("auto", "fp32", "int8"):
            raise ValueError(f"DETECTOR_PRECISION must be auto, fp32 or int8, got {self.detector_precision!r}")
        cpu = self.device == "cpu" or (self.device in ("", "auto") and _visible_device() == "cpu")
        if self.detector_backend in ("auto", "onnx"):
            auto_int8 = self.detector_precision == "auto" and cpu and cpu_has_int8_dot_product()
            if int8.exists() and (self.detector_precision == "int8" or auto_int8):
                return int8
            if self.detector_precision == "int8":
                raise FileNotFoundError(f"DETECTOR_PRECISION=int8 but {int8} is missing: run `make weights`")
            if onnx.exists():
                return onnx
        if pt.exists():
            return pt
        raise FileNotFoundError(f"no detector weights in {WEIGHTS_DIR}: run `make weights` first")


def _visible_device() -> str:
    from spoton.bootstrap.device import pick_device

    return pick_device("auto")
