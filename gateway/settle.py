"""Settled identities on the gateway's history path: step results wait until reid says their sightings are final,
take the settled global ids, then go to history (track points, persons, stored zone events). Pure: no I/O.

Live messages and alerts use the provisional ids as they come; history uses settled ids (DESIGN §3). In reid's
online mode every Associate reply settles its own step (``settled_through_ns`` = the step's time), so nothing
waits; in window mode a step waits about the window (REID_WINDOW_S of media time).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from gateway.step import StepResult
from spoton.timeutil import ns_to_iso
from spoton.v1 import reid_pb2

REASONS = {
    reid_pb2.IDENTITY_CHANGE_REASON_SETTLED: "settled",
    reid_pb2.IDENTITY_CHANGE_REASON_MERGE: "merge",
    reid_pb2.IDENTITY_CHANGE_REASON_SPLIT: "split",
}
SightingKey = tuple[str, int, int]  # (camera_id, track_id, media time ns)


@dataclass(frozen=True)
class IdentityChange:
    """A global id already sent for a local track that changed from ``since_ns`` on (DESIGN §3 identity_update)."""

    camera_id: str
    track_id: int
    from_global_id: int
    to_global_id: int
    since_ns: int
    reason: str = "settled"

    def to_dict(self) -> dict:
        """One entry of the ``identity_update`` message's ``changes``."""
        return {
            "camera_id": self.camera_id,
            "track_id": self.track_id,
            "from_global_id": self.from_global_id,
            "to_global_id": self.to_global_id,
            "since": ns_to_iso(self.since_ns),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Settlement:
    """What one Associate reply settled: every sighting up to ``through_ns`` is final, ``labels`` holds the
    final ids of those that settled now (the others keep the id they were sent with); ``changes`` are ids already
    sent that changed."""

    through_ns: int
    labels: dict[SightingKey, int]
    changes: tuple[IdentityChange, ...] = ()

    @classmethod
    def from_proto(cls, reply: reid_pb2.AssociateResponse, step_ns: int) -> Settlement:
        """``step_ns``: the step's media time; a reply without ``settled_through_ns`` (a reid that predates
        settling) settles its own step."""
        return cls(
            reply.settled_through_ns or step_ns,
            {(s.camera_id, int(s.track_id), int(s.timestamp_ns)): int(s.global_id) for s in reply.settled},
            tuple(
                IdentityChange(
                    c.camera_id,
                    int(c.track_id),
                    int(c.from_global_id),
                    int(c.to_global_id),
                    int(c.since_ns),
                    REASONS.get(c.reason, "settled"),
                )
                for c in reply.changes
            ),
        )


class SettlingHistory:
    """Step results of one session waiting for their settled ids, oldest first."""

    def __init__(self) -> None:
        self.waiting: deque[StepResult] = deque()
        self.labels: dict[SightingKey, int] = {}
        self.through_ns = -1
        self.relabelled = 0  # track points written with an id other than the one sent live

    def add(self, result: StepResult) -> list[StepResult]:
        """A step as it was published; returns the steps now final (this one, when nothing waits)."""
        self.waiting.append(result)
        return self._release()

    def settle(self, s: Settlement) -> list[StepResult]:
        """Apply one reply's settlement; returns the steps now final, with their settled ids."""
        self.labels.update(s.labels)
        self.through_ns = max(self.through_ns, s.through_ns)
        return self._release()

    def flush(self) -> list[StepResult]:
        """The session ended: every waiting step goes, with the settled ids known so far."""
        self.through_ns = max([self.through_ns] + [r.timestamp_ns for r in self.waiting])
        return self._release()

    def _release(self) -> list[StepResult]:
        out = []
        while self.waiting and self.waiting[0].timestamp_ns <= self.through_ns:
            out.append(self._relabel(self.waiting.popleft()))
        if not self.waiting:
            self.labels.clear()
        return out

    def _relabel(self, r: StepResult) -> StepResult:
        cameras = []
        for c in r.cameras:
            keys = [(c.camera_id, int(t), c.timestamp_ns) for t in c.track_id.tolist()]
            gids = np.array([self.labels.pop(k, g) for k, g in zip(keys, c.global_id.tolist(), strict=True)], np.int64)
            changed = int(np.count_nonzero(gids != c.global_id))
            if changed:
                self.relabelled += changed
                c = dataclasses.replace(c, global_id=gids)
            cameras.append(c)
        return dataclasses.replace(r, cameras=tuple(cameras))
