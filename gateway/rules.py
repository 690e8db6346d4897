"""Live alert rules over zone and line events (DESIGN §3 ``/ws/events``). Pure: no I/O.

Alerts are edge-triggered: ``occupancy_above`` fires when a zone's head count rises above the limit and re-arms when
it falls back; ``loitering`` fires once per visit when a person has stayed the given seconds; ``wrong_way`` fires on
every crossing against the allowed direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.events import ZoneEvent
from spoton.timeutil import ns_to_iso
from spoton.videoset import Rule


@dataclass(frozen=True)
class Alert:
    timestamp_ns: int
    rule_id: str
    kind: str
    target: str
    value: float
    global_id: int | None = None

    @property
    def message(self) -> str:
        if self.kind == "occupancy_above":
            return f"{int(self.value)} people in zone {self.target}"
        if self.kind == "loitering":
            return f"person {self.global_id} in zone {self.target} for {self.value:.0f} s"
        return f"person {self.global_id} crossed {self.target} the wrong way"

    def to_dict(self, session_id: str) -> dict:
        return {
            "type": "alert",
            "session_id": session_id,
            "timestamp": ns_to_iso(self.timestamp_ns),
            "rule_id": self.rule_id,
            "kind": self.kind,
            "target": self.target,
            "value": self.value,
            "global_id": self.global_id,
            "message": self.message,
        }


class RuleEngine:
    """Evaluates one session's rules step by step from the zone and line events of that step."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.inside: dict[str, dict[int, int]] = {}  # zone -> global id -> entered at (ns)
        self.loiter_fired: set[tuple[str, int, int]] = set()
        self.over: set[str] = set()

    def step(self, timestamp_ns: int, events: list[ZoneEvent]) -> list[Alert]:
        alerts: list[Alert] = []
        for e in events:
            if e.kind == "enter":
                self.inside.setdefault(e.zone_id, {})[e.global_id] = e.timestamp_ns
            elif e.kind == "exit":
                self.inside.get(e.zone_id, {}).pop(e.global_id, None)
        for rule in self.rules:
            if rule.kind == "occupancy_above":
                n = len(self.inside.get(rule.target, {}))
                if n > rule.threshold and rule.id not in self.over:
                    self.over.add(rule.id)
                    alerts.append(Alert(timestamp_ns, rule.id, rule.kind, rule.target, float(n)))
                elif n <= rule.threshold:
                    self.over.discard(rule.id)
            elif rule.kind == "loitering":
                for gid, since in self.inside.get(rule.target, {}).items():
                    stayed = (timestamp_ns - since) / 1e9
                    key = (rule.id, gid, since)
                    if stayed >= rule.threshold and key not in self.loiter_fired:
                        self.loiter_fired.add(key)
                        alerts.append(Alert(timestamp_ns, rule.id, rule.kind, rule.target, stayed, gid))
            else:
                wrong = "cross_backward" if rule.allowed == "forward" else "cross_forward"
                alerts += [
                    Alert(e.timestamp_ns, rule.id, rule.kind, rule.target, 1.0, e.global_id)
                    for e in events
                    if e.zone_id == rule.target and e.kind == wrong
                ]
        return alerts
