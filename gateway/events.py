"""Zone and line events from each step's floor points (DESIGN §1: the gateway owns them). Pure: shapely only.

Per global person: the floor point of a step is the mean over the cameras that see them. Entering or leaving a
zone polygon gives ``enter``/``exit``; the segment between consecutive points crossing a counting line gives
``cross_forward`` (from the left of a->b to its right) or ``cross_backward``. A person unseen for ``exit_after_s``
leaves every zone they were in at the time they were last seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import LineString, Point, Polygon

from spoton.timeutil import ns_to_iso
from spoton.videoset import VideoSet


@dataclass(frozen=True)
class ZoneEvent:
    timestamp_ns: int
    zone_id: str
    global_id: int
    kind: str  # enter | exit | cross_forward | cross_backward

    def to_dict(self, session_id: str) -> dict:
        return {
            "type": "zone_event",
            "session_id": session_id,
            "timestamp": ns_to_iso(self.timestamp_ns),
            "zone_id": self.zone_id,
            "global_id": self.global_id,
            "kind": self.kind,
        }


@dataclass
class _PersonState:
    point: np.ndarray
    last_ns: int
    zones: set[str] = field(default_factory=set)


class ZoneEventDetector:
    """Turns per-step floor points into zone and line events for one session."""

    def __init__(self, video_set: VideoSet, exit_after_s: float = 2.0) -> None:
        self.zones = {z.id: Polygon(z.polygon) for z in video_set.zones}
        self.lines = {ln.id: (np.array(ln.a, float), np.array(ln.b, float)) for ln in video_set.lines}
        self.exit_after_ns = int(exit_after_s * 1e9)
        self.people: dict[int, _PersonState] = {}

    def step(self, timestamp_ns: int, points: dict[int, np.ndarray]) -> list[ZoneEvent]:
        """``points``: global id -> (2,) floor metres at this step. Returns the events, in a stable order."""
        events: list[ZoneEvent] = []
        for gid in sorted(points):
            p = np.asarray(points[gid], float)
            state = self.people.get(gid)
            inside = {zid for zid, poly in self.zones.items() if poly.contains(Point(p))}
            before = state.zones if state else set()
            events += [ZoneEvent(timestamp_ns, z, gid, "enter") for z in sorted(inside - before)]
            events += [ZoneEvent(timestamp_ns, z, gid, "exit") for z in sorted(before - inside)]
            if state is not None:
                events += self._crossings(timestamp_ns, gid, state.point, p)
            self.people[gid] = _PersonState(p, timestamp_ns, inside)
        for gid, state in list(self.people.items()):
            if gid not in points and timestamp_ns - state.last_ns > self.exit_after_ns:
                events += [ZoneEvent(state.last_ns, z, gid, "exit") for z in sorted(state.zones)]
                del self.people[gid]
        return events

    def finish(self) -> list[ZoneEvent]:
        """The session ended: everyone still inside a zone leaves it when last seen."""
        events = [
            ZoneEvent(s.last_ns, z, gid, "exit") for gid, s in sorted(self.people.items()) for z in sorted(s.zones)
        ]
        self.people.clear()
        return events

    def _crossings(self, ts: int, gid: int, p0: np.ndarray, p1: np.ndarray) -> list[ZoneEvent]:
        out = []
        if np.allclose(p0, p1):
            return out
        path = LineString([p0, p1])
        for lid, (a, b) in self.lines.items():
            if path.crosses(LineString([a, b])):
                side0 = np.cross(b - a, p0 - a)
                out.append(ZoneEvent(ts, lid, gid, "cross_forward" if side0 > 0 else "cross_backward"))
        return out
