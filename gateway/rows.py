"""The history's row types (one per table the gateway writes) and the batch they travel in: the COPY column lists
are the rows' field names, so their order lives in one place."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class TrackPoint(NamedTuple):
    """One ``track_points`` row: a track seen by a camera at a step (pixels, metres, UTC time)."""

    time: datetime
    session_id: str
    step: int
    camera_id: str
    frame_index: int
    track_id: int
    global_id: int | None
    bbox: list[float]  # [x1, y1, x2, y2] pixels
    confidence: float
    floor_x_m: float | None
    floor_y_m: float | None


class ZoneEventRow(NamedTuple):
    """One ``zone_events`` row."""

    time: datetime
    session_id: str
    zone_id: str
    global_id: int
    kind: str


class AlertRow(NamedTuple):
    """One ``alerts`` row."""

    time: datetime
    session_id: str
    rule_id: str
    kind: str
    target: str
    global_id: int | None
    value: float
    message: str


# The COPY column lists are the rows' field names, so their order lives in one place.
TRACK_POINT_COLUMNS = TrackPoint._fields
ZONE_EVENT_COLUMNS = ZoneEventRow._fields
ALERT_COLUMNS = AlertRow._fields


class Batch(NamedTuple):
    """Rows emitted during one flush interval: the unit that is spooled, committed in one transaction, deleted."""

    rows: list[TrackPoint]
    events: list[ZoneEventRow]
    alerts: list[AlertRow]

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.events) + len(self.alerts)
