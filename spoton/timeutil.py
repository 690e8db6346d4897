"""Time conversions, in one place: integer nanoseconds since the Unix epoch inside, ``datetime`` at the database,
ISO 8601 strings only at the edges (JSON). Exact integer arithmetic; datetimes carry microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def ns_to_dt(ts_ns: int) -> datetime:
    """Unix ns -> aware UTC datetime, truncated to the microsecond (PostgreSQL's ``timestamptz`` precision)."""
    return EPOCH + timedelta(microseconds=int(ts_ns) // 1000)


def dt_to_ns(dt: datetime) -> int:
    """Aware datetime -> Unix ns (a multiple of 1000: datetimes hold microseconds)."""
    return (dt - EPOCH) // _MICROSECOND * 1000


def ns_to_iso(ts_ns: int) -> str:
    """Unix ns -> ISO 8601 in UTC with a ``Z`` suffix, e.g. ``2024-01-01T00:00:00.040000Z`` (microseconds)."""
    return ns_to_dt(ts_ns).isoformat().replace("+00:00", "Z")
