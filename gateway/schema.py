"""The gateway's tables (DESIGN section 6): versioned migrations, then TimescaleDB hypertables where possible."""

from __future__ import annotations

from pathlib import Path

from gateway.config import GatewaySettings
from spoton.db import Hypertable, TimescalePlan, apply_migrations

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Time-series tables the gateway writes: hypertables on ``time`` on TimescaleDB, compressed per segment.
HYPERTABLES = (
    Hypertable("track_points", ("session_id", "camera_id")),
    Hypertable("zone_events", ("session_id",)),
    Hypertable("alerts", ("session_id",)),
)


def timescale_plan(settings: GatewaySettings) -> TimescalePlan:
    """Compression after HISTORY_COMPRESS_AFTER_DAYS and retention after HISTORY_RETENTION_DAYS (0 = none)."""
    return TimescalePlan(
        HYPERTABLES,
        compress_after_days=settings.history_compress_after_days,
        retention_days=settings.history_retention_days,
        chunk_days=settings.history_chunk_days,
    )


def migrate(url: str, settings: GatewaySettings | None = None) -> list[str]:
    """Apply the gateway's migrations and its TimescaleDB plan; the migration files applied now."""
    return apply_migrations(url, MIGRATIONS, "gateway", timescale_plan(settings or GatewaySettings()))
