"""Mapping service settings (DESIGN §7)."""

from __future__ import annotations

from pydantic import Field

from spoton.bootstrap.settings import CommonSettings


class MappingSettings(CommonSettings):
    port: int = Field(50054, validation_alias="MAPPING_SVC_PORT")
    metrics_port: int = Field(9104, validation_alias="MAPPING_SVC_METRICS_PORT")
    video_sets_dir: str = ""
    ransac_threshold_m: float = 0.5
