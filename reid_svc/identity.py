"""Global identity per session: local tracks (camera, track id) -> global person ids. Pure numpy/scipy.

Decisions are made per local track, not per detection: a track keeps its global id from step to step
(hysteresis) unless an operator splits it or its own camera's floor points keep contradicting the person's other
sightings. Each person has one floor position per step (the median of its tracks' floor points) and a walking
velocity. A new track is matched (Hungarian, one step at a time) against the session's persons by appearance (best
cosine similarity against each person's small embedding bank), gated by:
  * one camera at one instant shows two people as two tracks, so a person already held by another live track of
    the same camera is not a candidate;
  * floor consistency: a person seen in the last ``recent_s`` must be within ``max_floor_distance_m`` of where
    its velocity puts it now, and the floor agreement adds to the score;
  * space-time plausibility: nobody moves faster than ``max_speed_mps``;
  * appearance alone (no recent floor sighting) must clear the stricter ``reentry_threshold``.
A track whose floor point stays more than ``detach_distance_m`` from the rest of its person's sightings for
``detach_after_steps`` steps in a row (a wrong join, or a tracker that swapped people) is taken off that person
and decided again as a new track. Persons unseen for ``retire_after_s`` retire from matching.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

TrackKey = tuple[str, int]


@dataclass(frozen=True)
class AssociationOptions:
    # Floor-and-appearance score a new track must reach to join a recently seen person. 0.5 (was 0.55) keeps more
    # handovers of impure detector tracks at the same precision (bench/identity_eval.py, whole videos: demo 28 -> 27
    # ids, low overlap 0.430 -> 0.444, 45 -> 42 ids; ground-truth boxes unchanged); 0.4 merges people.
    match_threshold: float = 0.5
    # Appearance alone (no recent floor sighting) must clear this: with the default MobileNetV2 embedder the
    # same person seen >10 s apart scores median 0.64 and different people 0.57 (p95 0.70) on the demo cameras.
    reentry_threshold: float = 0.75
    max_floor_distance_m: float = 1.5
    max_speed_mps: float = 3.0
    retire_after_s: float = 60.0
    recent_s: float = 2.0
    bank_size: int = 16
    floor_weight: float = 0.5
    detach_distance_m: float = 2.5
    detach_after_steps: int = 3
    # Two persons seen by different cameras standing within ``attach_distance_m`` of each other for
    # ``attach_after_steps`` steps in a row are one person (the younger joins the older), unless one camera has seen
    # both at one instant for ``apart_after_steps`` steps: then they are two people for good. 0 turns it off.
    attach_distance_m: float = 1.0
    attach_after_steps: int = 5
    apart_after_steps: int = 3
    # How far ahead (s) a person's velocity extrapolates its position; beyond that it stays put.
    predict_horizon_s: float = 2.0
    # Global IDs of a new gallery start here: a gateway resuming a session on a replica that lost its gallery
    # passes the next unused ID so old and new persons never share one.
    first_global_id: int = 1

    @classmethod
    def from_dict(cls, base: AssociationOptions, values: dict) -> AssociationOptions:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown association options {sorted(unknown)}; known: {sorted(known)}")
        merged = {k: getattr(base, k) for k in known} | {k: type(getattr(base, k))(v) for k, v in values.items()}
        return cls(**merged)


@dataclass
class Observation:
    """One local track at one instant; ``embedding`` (D,) may be None; ``floor_m`` (2,) may be None."""

    camera_id: str
    track_id: int
    timestamp_ns: int
    embedding: np.ndarray | None
    floor_m: np.ndarray | None
    feet_cut: bool = False  # the box reaches the frame's bottom edge: ``floor_m`` falls short of the feet


@dataclass
class Thumbnail:
    """A person's best crop so far: JPEG bytes, its score, when and by which camera it was seen."""

    jpeg: bytes
    score: float
    timestamp_ns: int
    camera_id: str


def thumbnail_score(jpeg: bytes, visibility: float) -> float:
    """Larger, sharper and less occluded crops score higher: pixel area x sharpness (variance of the Laplacian at
    a fixed 128 px height, so size does not count twice) x visible share. ValueError for an undecodable crop."""
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    if crop is None or crop.size == 0:
        raise ValueError("crop_jpeg is not a JPEG image")
    h, w = crop.shape
    norm = cv2.resize(crop, (max(1, round(w * 128 / h)), 128))
    sharpness = float(cv2.Laplacian(norm, cv2.CV_64F).var())
    return float(h * w) * sharpness * float(np.clip(visibility, 0.0, 1.0))


@dataclass
class Person:
    global_id: int
    bank: deque = field(default_factory=lambda: deque(maxlen=16))
    last_seen_ns: int = 0
    first_seen_ns: int = 0
    last_floor_m: np.ndarray | None = None
    last_floor_ns: int = 0
    velocity_mps: np.ndarray = field(default_factory=lambda: np.zeros(2))
    last_camera: str = ""
    cameras: set[str] = field(default_factory=set)
    thumbnail: Thumbnail | None = None

    def similarity(self, emb: np.ndarray) -> float:
        if not self.bank:
            return 0.0
        return float(np.max(np.stack(self.bank) @ emb))

    def predicted_floor(self, ts_ns: int, horizon_s: float) -> np.ndarray | None:
        """Where the person should be at ``ts_ns`` (m): last fused position moved by its velocity."""
        if self.last_floor_m is None:
            return None
        dt = float(np.clip((ts_ns - self.last_floor_ns) / 1e9, 0.0, horizon_s))
        return self.last_floor_m + self.velocity_mps * dt

    def move_to(self, floor_m: np.ndarray, ts_ns: int, max_speed_mps: float) -> None:
        """New fused position; the velocity follows (smoothed, capped) when the last one is recent."""
        dt = (ts_ns - self.last_floor_ns) / 1e9
        if self.last_floor_m is not None and 0 < dt <= 2.0:
            v = (floor_m - self.last_floor_m) / dt
            speed = float(np.linalg.norm(v))
            if speed > max_speed_mps:
                v *= max_speed_mps / speed
            self.velocity_mps = 0.5 * self.velocity_mps + 0.5 * v
        elif self.last_floor_m is None or dt > 2.0:
            self.velocity_mps = np.zeros(2)
        self.last_floor_m = np.asarray(floor_m, np.float64)
        self.last_floor_ns = ts_ns


class IdentityGallery:
    """One session's persons and local-track assignments."""

    def __init__(self, options: AssociationOptions | None = None) -> None:
        self.options = options or AssociationOptions()
        self.persons: dict[int, Person] = {}
        self.assignment: dict[TrackKey, int] = {}
        self.corrections: list[dict] = []
        self.retired = 0
        self.detached = 0
        # Per local track: steps it has been seen, and consecutive steps its floor contradicted its person.
        self.track_steps: dict[TrackKey, int] = {}
        self.strikes: dict[TrackKey, int] = {}
        self.attached = 0
        self._together: dict[tuple[int, int], int] = {}
        # Steps each pair of persons was seen by one camera at one instant; from ``apart_after_steps`` on they are
        # two people for good and never attached (fewer: a tracker's brief duplicate of one person).
        self.apart: dict[tuple[int, int], int] = {}
        self._next_id = max(1, int(self.options.first_global_id))

    @property
    def embedding_dim(self) -> int:
        """Length of this gallery's embeddings (0 before the first one)."""
        for p in self.persons.values():
            if p.bank:
                return int(p.bank[0].shape[0])
        return 0

    def _new_person(self, ts_ns: int) -> Person:
        person = Person(self._next_id, deque(maxlen=self.options.bank_size), first_seen_ns=ts_ns)
        self.persons[person.global_id] = person
        self._next_id += 1
        return person

    def _observe(self, person: Person, obs: Observation) -> None:
        """Appearance and time of one sighting (the floor position is fused per step in ``step``)."""
        if obs.embedding is not None and obs.embedding.size:
            person.bank.append(np.asarray(obs.embedding, np.float32))
        person.last_seen_ns = max(person.last_seen_ns, obs.timestamp_ns)
        person.last_camera = obs.camera_id
        person.cameras.add(obs.camera_id)
        key = (obs.camera_id, int(obs.track_id))
        self.track_steps[key] = self.track_steps.get(key, 0) + 1

    def _margin(self, person: Person, obs: Observation, busy: set[int]) -> float:
        """How far the pair clears its acceptance threshold (>= 0 accepts), or -inf when a gate rules it out.

        With a recent floor sighting the score mixes appearance and floor agreement and must reach
        ``match_threshold``; appearance alone (a person seen a while ago) must reach ``reentry_threshold``.
        """
        o = self.options
        if person.global_id in busy:
            return -np.inf
        dt_s = (obs.timestamp_ns - person.last_seen_ns) / 1e9
        if dt_s > o.retire_after_s:
            return -np.inf
        app = person.similarity(obs.embedding) if obs.embedding is not None and obs.embedding.size else 0.0
        predicted = person.predicted_floor(obs.timestamp_ns, o.predict_horizon_s)
        if obs.floor_m is None or predicted is None:
            return app - o.reentry_threshold
        dist = float(np.linalg.norm(obs.floor_m - predicted))
        floor_dt = max((obs.timestamp_ns - person.last_floor_ns) / 1e9, 0.0)
        reach = o.max_floor_distance_m + o.max_speed_mps * floor_dt
        if dist > reach:
            return -np.inf
        if floor_dt <= o.recent_s:
            agreement = 1.0 - dist / reach
            return (1 - o.floor_weight) * app + o.floor_weight * agreement - o.match_threshold
        return app - o.reentry_threshold

    def step(self, observations: list[Observation]) -> list[tuple[str, int, int]]:
        """Assign a global id to every observation of one step; returns (camera_id, track_id, global_id)."""
        if not observations:
            return []
        known, new = [], []
        for ob in observations:
            key = (ob.camera_id, int(ob.track_id))
            (known if key in self.assignment else new).append(ob)
        for ob in self._detach(known):
            known.remove(ob)
            new.append(ob)
        # Persons held by another track of the same camera at this instant (two tracks in one camera at one
        # instant are two people); a track absent from this step no longer holds anyone.
        held: dict[str, set[int]] = {}
        for ob in known:
            gid = self.assignment[(ob.camera_id, int(ob.track_id))]
            held.setdefault(ob.camera_id, set()).add(gid)
            self._observe(self.persons[gid], ob)
        self._fuse_floor(known)
        # Camera by camera, so new tracks of one camera can join persons another camera created this step.
        by_camera: dict[str, list[Observation]] = {}
        for ob in new:
            by_camera.setdefault(ob.camera_id, []).append(ob)
        for cam in sorted(by_camera):
            self._match_new(by_camera[cam], held)
        self._attach(max(ob.timestamp_ns for ob in observations), held)
        self._retire(max(ob.timestamp_ns for ob in observations))
        return [
            (ob.camera_id, int(ob.track_id), self.assignment[(ob.camera_id, int(ob.track_id))]) for ob in observations
        ]

    def _fuse_floor(self, observations: list[Observation]) -> None:
        """One floor position per person and step: the median of its tracks' floor points."""
        points: dict[int, list[np.ndarray]] = {}
        ts: dict[int, int] = {}
        for ob in observations:
            if ob.floor_m is None:
                continue
            gid = self.assignment[(ob.camera_id, int(ob.track_id))]
            points.setdefault(gid, []).append(np.asarray(ob.floor_m, np.float64))
            ts[gid] = max(ts.get(gid, 0), ob.timestamp_ns)
        for gid, pts in points.items():
            self.persons[gid].move_to(np.median(np.stack(pts), axis=0), ts[gid], self.options.max_speed_mps)

    def _attach(self, now_ns: int, held: dict[str, set[int]]) -> None:
        """Join two persons that keep standing at one floor point while seen by different cameras (a sighting that
        started a person of its own, e.g. from a box cut by the image edge, found its person later)."""
        o = self.options
        if o.attach_distance_m <= 0:
            return
        for ids in held.values():
            ordered = sorted(ids)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    self.apart[(a, b)] = self.apart.get((a, b), 0) + 1
        here = [p for p in self.persons.values() if p.last_floor_ns == now_ns and p.last_floor_m is not None]
        together: dict[tuple[int, int], int] = {}
        for i, a in enumerate(here):
            for b in here[i + 1 :]:
                if np.linalg.norm(a.last_floor_m - b.last_floor_m) > o.attach_distance_m:
                    continue
                pair = (min(a.global_id, b.global_id), max(a.global_id, b.global_id))
                if self.apart.get(pair, 0) >= o.apart_after_steps:
                    continue
                if any(a.global_id in ids and b.global_id in ids for ids in held.values()):
                    continue
                together[pair] = self._together.get(pair, 0) + 1
        self._together = together
        for (older, younger), n in sorted(together.items()):
            if n >= o.attach_after_steps and older in self.persons and younger in self.persons:
                self._absorb(older, younger)
                self.attached += 1
                self._together = {k: v for k, v in self._together.items() if younger not in k}

    def _detach(self, known: list[Observation]) -> list[Observation]:
        """Known tracks whose floor points have contradicted their person's other sightings for
        ``detach_after_steps`` steps: they lose the person and are decided again. Of two disagreeing sightings
        the younger track is the suspect; of three or more, the ones far from the median of the rest."""
        o = self.options
        by_person: dict[int, list[Observation]] = {}
        for ob in known:
            if ob.floor_m is not None:
                by_person.setdefault(self.assignment[(ob.camera_id, int(ob.track_id))], []).append(ob)
        suspects: set[TrackKey] = set()
        for sightings in by_person.values():
            if len(sightings) < 2:
                continue
            pts = np.stack([np.asarray(ob.floor_m, np.float64) for ob in sightings])
            far = []
            for i, ob in enumerate(sightings):
                rest = np.median(np.delete(pts, i, axis=0), axis=0)
                if np.linalg.norm(pts[i] - rest) > o.detach_distance_m:
                    far.append(ob)
            if len(sightings) == 2 and len(far) == 2:
                far = [min(far, key=lambda ob: self.track_steps.get((ob.camera_id, int(ob.track_id)), 0))]
            suspects |= {(ob.camera_id, int(ob.track_id)) for ob in far}
        out = []
        for ob in known:
            key = (ob.camera_id, int(ob.track_id))
            if key not in suspects:
                self.strikes.pop(key, None)
                continue
            self.strikes[key] = self.strikes.get(key, 0) + 1
            if self.strikes[key] >= o.detach_after_steps:
                del self.assignment[key]
                self.strikes.pop(key)
                self.track_steps.pop(key, None)
                self.detached += 1
                out.append(ob)
        return out

    def _retire(self, now_ns: int) -> None:
        """Forget persons unseen for ``retire_after_s`` (they can no longer be matched) and their local tracks, so
        a session that runs for months keeps a bounded gallery."""
        cutoff = now_ns - int(self.options.retire_after_s * 1e9)
        gone = {gid for gid, p in self.persons.items() if p.last_seen_ns < cutoff}
        if not gone:
            return
        for gid in gone:
            del self.persons[gid]
        self.apart = {pair: n for pair, n in self.apart.items() if not (pair[0] in gone or pair[1] in gone)}
        self.assignment = {k: g for k, g in self.assignment.items() if g not in gone}
        self.track_steps = {k: n for k, n in self.track_steps.items() if k in self.assignment}
        self.strikes = {k: n for k, n in self.strikes.items() if k in self.assignment}
        self.retired += len(gone)

    def _match_new(self, new: list[Observation], held: dict[str, set[int]]) -> None:
        candidates = list(self.persons.values())
        if candidates:
            margins = np.full((len(new), len(candidates)), -np.inf)
            for i, ob in enumerate(new):
                busy = held.get(ob.camera_id, set())
                for j, person in enumerate(candidates):
                    margins[i, j] = self._margin(person, ob, busy)
            # Two new tracks of the same camera may not both take one person: Hungarian enforces 1:1.
            cost = np.where(np.isfinite(margins), -margins, 1e6)
            rows, cols = linear_sum_assignment(cost)
            matched = {}
            for r, c in zip(rows, cols, strict=True):
                if np.isfinite(margins[r, c]) and margins[r, c] >= 0:
                    matched[r] = candidates[c]
        else:
            matched = {}
        for i, ob in enumerate(new):
            person = matched.get(i) or self._new_person(ob.timestamp_ns)
            self.assignment[(ob.camera_id, int(ob.track_id))] = person.global_id
            held.setdefault(ob.camera_id, set()).add(person.global_id)
            self._observe(person, ob)
            # A person already placed this step by its established tracks keeps that position.
            if ob.floor_m is not None and (person.last_floor_m is None or person.last_floor_ns < ob.timestamp_ns):
                person.move_to(np.asarray(ob.floor_m, np.float64), ob.timestamp_ns, self.options.max_speed_mps)

    def merge(self, into: int, source: int) -> int:
        """Operator correction: every track of ``source`` now belongs to ``into``."""
        if into not in self.persons or source not in self.persons:
            from spoton.bootstrap.errors import NotFoundError

            raise NotFoundError(f"unknown global id {into if into not in self.persons else source}")
        if into == source:
            raise ValueError("cannot merge a person into itself")
        self._absorb(into, source)
        self.corrections.append({"kind": "merge", "into": into, "from": source})
        return into

    def _absorb(self, into: int, source: int) -> None:
        """Person ``source`` becomes part of ``into``: embeddings, cameras, latest position, local tracks."""
        a, b = self.persons[into], self.persons.pop(source)
        for emb in b.bank:
            a.bank.append(emb)
        a.cameras |= b.cameras
        a.first_seen_ns = min(a.first_seen_ns, b.first_seen_ns)
        if b.last_seen_ns > a.last_seen_ns:
            a.last_seen_ns, a.last_floor_m, a.last_floor_ns = b.last_seen_ns, b.last_floor_m, b.last_floor_ns
        for key, gid in self.assignment.items():
            if gid == source:
                self.assignment[key] = into
        apart: dict[tuple[int, int], int] = {}
        for (a, b), n in self.apart.items():
            a, b = sorted((into if a == source else a, into if b == source else b))
            if a != b:
                apart[(a, b)] = max(apart.get((a, b), 0), n)
        self.apart = apart

    def split(self, camera_id: str, track_id: int) -> int:
        """Operator correction: this local track becomes a new person."""
        key = (camera_id, int(track_id))
        if key not in self.assignment:
            from spoton.bootstrap.errors import NotFoundError

            raise NotFoundError(f"unknown track {track_id} in camera {camera_id!r}")
        old = self.assignment[key]
        person = self._new_person(self.persons[old].last_seen_ns)
        self.assignment[key] = person.global_id
        self.corrections.append(
            {"kind": "split", "camera_id": camera_id, "track_id": int(track_id), "from": old, "into": person.global_id}
        )
        return person.global_id

    def note(self, assignments: list[tuple[str, int, int]], ts_ns: int) -> None:
        """Persons decided elsewhere (window mode: reid_svc/tracklets.py) seen at ``ts_ns``: (camera_id, track_id,
        global_id) each. They are kept here for their thumbnails and stats, and retire like the others."""
        for camera_id, _, gid in assignments:
            p = self.persons.get(gid)
            if p is None:
                p = self.persons[gid] = Person(gid, deque(maxlen=self.options.bank_size), first_seen_ns=ts_ns)
            p.last_seen_ns = max(p.last_seen_ns, ts_ns)
            p.last_camera = camera_id
            p.cameras.add(camera_id)
        self._retire(ts_ns)

    def offer_thumbnail(self, global_id: int, jpeg: bytes, score: float, ts_ns: int, camera_id: str) -> bool:
        """Keep this crop (scored by ``thumbnail_score``) as the person's thumbnail when it beats the current one."""
        person = self.persons.get(global_id)
        if person is None:
            return False
        if person.thumbnail is not None and person.thumbnail.score >= score:
            return False
        person.thumbnail = Thumbnail(jpeg, score, ts_ns, camera_id)
        return True

    # ---- persistence (reid_svc/galleries.py stores these) ------------------------------------------------------
    def to_state(self) -> tuple[dict, np.ndarray]:
        """The gallery as JSON-able metadata and one (N, D) float32 array of every bank embedding."""
        persons, banks = [], []
        for p in self.persons.values():
            persons.append(
                {
                    "global_id": p.global_id,
                    "bank": len(p.bank),
                    "first_seen_ns": p.first_seen_ns,
                    "last_seen_ns": p.last_seen_ns,
                    "last_floor_m": None if p.last_floor_m is None else [float(v) for v in p.last_floor_m],
                    "last_floor_ns": p.last_floor_ns,
                    "velocity_mps": [float(v) for v in p.velocity_mps],
                    "last_camera": p.last_camera,
                    "cameras": sorted(p.cameras),
                    "thumbnail": None
                    if p.thumbnail is None
                    else {
                        "jpeg": base64.b64encode(p.thumbnail.jpeg).decode(),
                        "score": p.thumbnail.score,
                        "timestamp_ns": p.thumbnail.timestamp_ns,
                        "camera_id": p.thumbnail.camera_id,
                    },
                }
            )
            banks.extend(p.bank)
        meta = {
            "next_id": self._next_id,
            "persons": persons,
            "assignment": [[cam, track, gid] for (cam, track), gid in self.assignment.items()],
            "corrections": self.corrections,
            "retired": self.retired,
            "track_steps": [[cam, track, n] for (cam, track), n in self.track_steps.items()],
        }
        dim = banks[0].shape[0] if banks else 0
        return meta, np.stack(banks).astype(np.float32) if banks else np.zeros((0, dim), np.float32)

    @classmethod
    def from_state(cls, meta: dict, embeddings: np.ndarray, options: AssociationOptions) -> IdentityGallery:
        g = cls(options)
        row = 0
        for d in meta["persons"]:
            p = Person(
                int(d["global_id"]),
                deque((embeddings[row + i] for i in range(d["bank"])), maxlen=options.bank_size),
                last_seen_ns=int(d["last_seen_ns"]),
                first_seen_ns=int(d["first_seen_ns"]),
                last_floor_m=None if d["last_floor_m"] is None else np.asarray(d["last_floor_m"], np.float64),
                last_floor_ns=int(d["last_floor_ns"]),
                velocity_mps=np.asarray(d.get("velocity_mps", [0.0, 0.0]), np.float64),
                last_camera=d["last_camera"],
                cameras=set(d["cameras"]),
            )
            if d.get("thumbnail"):
                t = d["thumbnail"]
                p.thumbnail = Thumbnail(base64.b64decode(t["jpeg"]), t["score"], t["timestamp_ns"], t["camera_id"])
            row += d["bank"]
            g.persons[p.global_id] = p
        g.assignment = {(cam, int(track)): int(gid) for cam, track, gid in meta["assignment"]}
        g.corrections = list(meta["corrections"])
        g.retired = int(meta.get("retired", 0))
        g.track_steps = {(cam, int(track)): int(n) for cam, track, n in meta.get("track_steps", [])}
        g._next_id = max(int(meta["next_id"]), g._next_id)
        return g

    def stats(self, now_ns: int | None = None) -> dict[str, int]:
        now = now_ns if now_ns is not None else max((p.last_seen_ns for p in self.persons.values()), default=0)
        active = sum(1 for p in self.persons.values() if (now - p.last_seen_ns) / 1e9 <= self.options.retire_after_s)
        return {
            "persons": len(self.persons),
            "active_persons": active,
            "embeddings": sum(len(p.bank) for p in self.persons.values()),
            "local_tracks": len(self.assignment),
            "corrections": len(self.corrections),
        }
