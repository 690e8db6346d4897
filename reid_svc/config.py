"""ReID service settings (DESIGN §7)."""

from __future__ import annotations

from pydantic import Field

from spoton.bootstrap.settings import CommonSettings


class ReidSettings(CommonSettings):
    port: int = Field(50053, validation_alias="REID_SVC_PORT")
    metrics_port: int = Field(9103, validation_alias="REID_SVC_METRICS_PORT")
    reid_model_type: str = "mobilenetv2"
    reid_weights: str = ""
    # Crop size fed to the embedder, "WxH" pixels (multiples of 32).
    reid_input_size: str = "64x128"
    reid_backend: str = "auto"  # auto | torch | onnx
    reid_threads: int = 0
    # Associate defaults (per-session options override them).
    reid_match_threshold: float = 0.55
    reid_reentry_threshold: float = 0.75
    reid_max_floor_distance_m: float = 1.5
    reid_max_speed_mps: float = 3.0
    reid_retire_after_s: float = 60.0

    @property
    def input_wh(self) -> tuple[int, int]:
        w, _, h = self.reid_input_size.lower().partition("x")
        wh = int(w), int(h or w)
        if min(wh) <= 0 or wh[0] % 32 or wh[1] % 32:
            raise ValueError(f"REID_INPUT_SIZE must be WxH in multiples of 32, got {self.reid_input_size}")
        return wh
