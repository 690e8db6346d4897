"""Analytics service settings (DESIGN §7)."""

from __future__ import annotations

from pydantic import Field

from spoton.bootstrap.settings import CommonSettings


class AnalyticsSettings(CommonSettings):
    port: int = Field(50055, validation_alias="ANALYTICS_SVC_PORT")
    metrics_port: int = Field(9105, validation_alias="ANALYTICS_SVC_METRICS_PORT")
    analytics_max_buckets: int = 100_000
    # Floor points a trajectory request for everyone (no global_id) may cover; more is INVALID_ARGUMENT.
    analytics_max_trajectory_points: int = 500_000
