"""Settled identities: local tracks cut into tracklets, tracklets associated over a sliding window. Pure numpy/scipy.

A local track (camera, track id) is cut into **tracklets** where its floor path jumps (a point farther from the
last good one than anyone can walk, confirmed by the next ``jump_confirm`` points: the tracker swapped people) or
its appearance breaks (the mean embedding of its last ``break_steps`` sightings no longer resembles the rest).

Every step, the tracklets of the last ``window_s`` seconds are associated afresh with each other and with the
final identities of the last ``horizon_s`` seconds by a constrained agglomerative clustering (best pair first,
single linkage on evidence, complete linkage on constraints):
  * two tracklets of one camera seen at one instant are different people (cannot link);
  * simultaneous sightings in different cameras must agree on the floor (median distance <= ``agree_m``), and
    agreement is evidence;
  * a handover (one tracklet ends, another starts) must be walkable in the elapsed time: floor distance <=
    ``floor_slack_m`` + ``max_speed_mps`` x gap; per pair of cameras the fastest walk seen in confident handovers is
    learnt (``CameraLinks``) and a handover faster than ``link_speedup`` x that is refused too;
  * appearance alone (no floor evidence) must clear ``reentry_threshold``.
A tracklet that started more than ``window_s`` ago is **final**: its identity never changes again. Each step
returns the provisional ids (the current solution, as sent live), the observations that have just settled (older
than the window, with their final ids) and the changes: an id already sent for a track that its settled id
differs from (DESIGN §3 ``identity_update``: camera_id, track_id, from_global_id, to_global_id, since).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from reid_svc.identity import AssociationOptions, IdentityGallery, Observation

TrackKey = tuple[str, int]
# Sightings per current tracklet whose embeddings a stored window keeps (a cut takes a few from the tail: 2-3 with
# the default options; an appearance break reads the last ``break_steps``).
KEEP_EMBEDDINGS = 8
NEG = -1e9  # no evidence for a pair (never linked, but not forbidden)


@dataclass(frozen=True)
class WindowOptions:
    window_s: float = 10.0
    horizon_s: float = 60.0
    max_speed_mps: float = 3.0
    floor_slack_m: float = 1.5
    agree_m: float = 1.5
    recent_s: float = 2.0
    jump_m: float = 2.0
    jump_confirm: int = 2
    break_steps: int = 5
    break_min_steps: int = 10
    break_threshold: float = 0.0
    link_threshold: float = 0.55
    # Appearance alone links two tracklets at this cosine of their mean embeddings. Off (> 1) by default, as in
    # reid_svc/identity.py for MobileNetV2: on the low-overlap cameras (truth boxes) different people's tracklets
    # score median 0.79, p90 0.885; the same person's 0.90 (p10 0.79) — at 0.75 the window merged 19 people into
    # 10-11 identities over the whole videos.
    reentry_threshold: float = 1.01
    floor_weight: float = 0.5
    link_speedup: float = 0.5
    partner_distance_m: float = 2.5
    partner_confirm: int = 3
    partner_min_agree: int = 5
    handover_s: float = 10.0
    walk_spread_mps: float = 0.7
    # A handover across unseen ground is scored by the walk only if it does not turn back (``_walk_continues``).
    turn_min_speed_mps: float = 0.3
    turn_min_cos: float = 0.0
    velocity_span_s: float = 1.5
    link_min_handovers: int = 3
    first_global_id: int = 1
    # The online rule (reid_svc/identity.py, these options) may run beside the window as a prior: two tracklets
    # it gave one id (their majority) link with margin ``prior_margin`` unless a constraint forbids it; tracklets
    # it kept apart need evidence clearing ``link_threshold + prior_penalty``. Off (None) by default: measured, it
    # lifts the demo on truth boxes (settled 0.884 -> 0.934) but costs the 300-frame detector window
    # (0.681 -> 0.627) and low overlap (0.618 -> 0.576), where the online rule's wrong joins become the prior.
    prior: AssociationOptions | None = None
    prior_margin: float = 1.0
    prior_penalty: float = 0.1


@dataclass
class Sighting:
    """One observation kept until it settles: which tracklet holds it now (cuts may move it)."""

    camera_id: str
    track_id: int
    ts_ns: int
    floor_m: np.ndarray | None
    embedding: np.ndarray | None
    tracklet: Tracklet | None = None
    online: int | None = None  # the online rule's id for it (the prior)
    feet_cut: bool = False  # its box touches the image's bottom edge: the floor point is short of the feet


@dataclass(eq=False)
class Tracklet:
    """A piece of one local track believed to show one person."""

    uid: int
    camera_id: str
    track_id: int
    sightings: list[Sighting] = field(default_factory=list)
    label: int | None = None  # final global id (None while in the window)
    provisional: int | None = None  # the id last sent for it
    emitted: dict[int, int] = field(default_factory=dict)  # id sent -> first ts_ns sent with it
    suspects: int = 0  # trailing sightings far from the last good floor point
    strays: int = 0  # trailing steps far from every present partner in other cameras
    good_floor: np.ndarray | None = None
    good_ns: int = 0
    _emb_sum: np.ndarray | None = None
    _emb_n: int = 0
    votes: dict[int, int] = field(default_factory=dict)  # online id -> sightings given it

    @property
    def prior(self) -> int | None:
        """The id the online rule gave most of its sightings (None without a prior)."""
        return max(self.votes, key=lambda g: (self.votes[g], g)) if self.votes else None

    @property
    def start_ns(self) -> int:
        return self.sightings[0].ts_ns

    @property
    def end_ns(self) -> int:
        return self.sightings[-1].ts_ns

    def mean_embedding(self) -> np.ndarray | None:
        if self._emb_sum is None or not self._emb_n:
            return None
        n = float(np.linalg.norm(self._emb_sum))
        return self._emb_sum / n if n > 0 else None

    def add(self, s: Sighting) -> None:
        self.sightings.append(s)
        s.tracklet = self
        if s.online is not None:
            self.votes[s.online] = self.votes.get(s.online, 0) + 1
        if s.embedding is not None:
            self._emb_sum = s.embedding.copy() if self._emb_sum is None else self._emb_sum + s.embedding
            self._emb_n += 1

    def take_tail(self, n: int) -> list[Sighting]:
        """Remove and return the last ``n`` sightings (a cut)."""
        tail, self.sightings = self.sightings[-n:], self.sightings[:-n]
        for s in tail:
            if s.online is not None:
                self.votes[s.online] -= 1
                if not self.votes[s.online]:
                    del self.votes[s.online]
            if s.embedding is not None and self._emb_sum is not None:
                self._emb_sum = self._emb_sum - s.embedding
                self._emb_n -= 1
        return tail

    def ends(self, span_s: float) -> Ends:
        """Where and when the tracklet's floor path starts and ends, with its walking velocity (m/s, a
        least-squares fit over ``span_s`` seconds) at each end. Sightings whose feet were cut off by the frame's
        bottom edge are left out (their floor points stall at the edge while the person walks on), unless the
        tracklet has no others."""
        floors = [(s.ts_ns, s.floor_m, s.feet_cut) for s in self.sightings if s.floor_m is not None]
        pts = [(ts, f) for ts, f, cut in floors if not cut] or [(ts, f) for ts, f, _ in floors]
        if not pts:
            return Ends(None, 0, np.zeros(2), None, 0, np.zeros(2))
        return Ends(pts[0][1], pts[0][0], _velocity(pts, span_s, True), pts[-1][1], pts[-1][0], _velocity(pts, span_s))


@dataclass(frozen=True)
class Ends:
    """A tracklet's first and last floor points (m), their times (ns) and velocities there (m/s)."""

    first: np.ndarray | None
    first_ns: int
    first_v: np.ndarray
    last: np.ndarray | None
    last_ns: int
    last_v: np.ndarray


def _velocity(pts: list[tuple[int, np.ndarray]], span_s: float, head: bool = False) -> np.ndarray:
    """Least-squares walking velocity (m/s) over the first (``head``) or last ``span_s`` seconds of points."""
    if head:
        t0 = pts[0][0]
        sel = [p for p in pts if p[0] - t0 <= span_s * 1e9]
    else:
        t1 = pts[-1][0]
        sel = [p for p in pts if t1 - p[0] <= span_s * 1e9]
    if len(sel) < 3:
        return np.zeros(2)
    t = np.array([p[0] for p in sel], np.float64) / 1e9
    if t[-1] - t[0] < 0.5 * span_s:
        return np.zeros(2)
    xy = np.stack([p[1] for p in sel])
    t = t - t.mean()
    return (t @ (xy - xy.mean(axis=0))) / float(t @ t)


def _walk_continues(v_out: np.ndarray, v_in: np.ndarray, o: WindowOptions) -> bool:
    """Whether a walk that left at velocity ``v_out`` (m/s) can be the one that came back at ``v_in``: where both
    move (>= ``turn_min_speed_mps``) their directions must not turn back (cosine >= ``turn_min_cos``). One person
    leaving the floor at an edge and another entering there a few seconds later walk opposite ways."""
    so, si = float(np.linalg.norm(v_out)), float(np.linalg.norm(v_in))
    if so < o.turn_min_speed_mps or si < o.turn_min_speed_mps:
        return True
    return float(v_out @ v_in) / (so * si) >= o.turn_min_cos


@dataclass(frozen=True)
class Change:
    """An id already sent for a track that settled differently (DESIGN §3 ``identity_update``, reason settled)."""

    camera_id: str
    track_id: int
    from_global_id: int
    to_global_id: int
    since_ns: int


@dataclass(frozen=True)
class Settled:
    """A sighting whose identity is final: (camera, track, media time) -> global id, and its tracklet's uid."""

    camera_id: str
    track_id: int
    ts_ns: int
    global_id: int
    tracklet: int


@dataclass
class WindowStep:
    """One step's answer: live ids (camera, track, gid) in input order, sightings that settled now, changes, and
    the media time (ns) up to which every sighting is final (``settled`` lists them all)."""

    provisional: list[tuple[str, int, int]]
    settled: list[Settled]
    changes: list[Change]
    through_ns: int = 0


class CameraLinks:
    """Walk times between cameras learnt from confident handovers: per ordered camera pair the gaps (s) seen."""

    def __init__(self) -> None:
        self.gaps: dict[tuple[str, str], list[float]] = {}

    def learn(self, a: str, b: str, gap_s: float) -> None:
        self.gaps.setdefault((a, b), []).append(gap_s)

    def fastest(self, a: str, b: str, min_count: int) -> float | None:
        g = self.gaps.get((a, b), [])
        return float(np.percentile(g, 5)) if len(g) >= min_count else None


class TrackletWindow:
    """One session's tracklets, window solution and final identities."""

    def __init__(self, options: WindowOptions | None = None) -> None:
        self.options = options or WindowOptions()
        self.current: dict[TrackKey, Tracklet] = {}
        self.tracklets: list[Tracklet] = []  # window tracklets and final ones within the horizon
        self.pending: list[Sighting] = []  # not settled yet, in time order
        self.links = CameraLinks()
        self.cuts = {"jump": 0, "appearance": 0, "partner": 0}
        # Per pair of tracklet uids (lo, hi): floor distances (m) at common instants; same-camera co-presence.
        self._together: dict[tuple[int, int], list[float]] = {}
        self._apart: set[tuple[int, int]] = set()
        self._instants: dict[int, list[Sighting]] = {}  # ts_ns -> sightings, within the horizon
        self._uid = 0
        self._next_id = max(1, int(self.options.first_global_id))
        self.now_ns = 0
        self.through_ns = -1  # every sighting up to this media time (ns) has settled
        self.gallery = None if self.options.prior is None else IdentityGallery(self.options.prior)

    # ---- input ---------------------------------------------------------------------------------------------
    def _new_tracklet(self, cam: str, track: int) -> Tracklet:
        self._uid += 1
        t = Tracklet(self._uid, cam, track)
        self.tracklets.append(t)
        self.current[(cam, track)] = t
        return t

    def _cut(self, t: Tracklet, n: int, reason: str) -> Tracklet:
        """Move the last ``n`` sightings of ``t`` into a new tracklet of the same local track."""
        tail = t.take_tail(n)
        new = self._new_tracklet(t.camera_id, t.track_id)
        for s in tail:
            new.add(s)
        self._redo_pairs([t, new])
        self.cuts[reason] += 1
        last = next((s for s in reversed(new.sightings) if s.floor_m is not None), None)
        new.good_floor, new.good_ns = (None, 0) if last is None else (last.floor_m, last.ts_ns)
        return new

    def _add(self, ob: Observation, online: int | None = None) -> Sighting:
        o = self.options
        key = (ob.camera_id, int(ob.track_id))
        emb = None
        if ob.embedding is not None and ob.embedding.size:
            e = np.asarray(ob.embedding, np.float32).reshape(-1)
            n = float(np.linalg.norm(e))
            emb = e / n if n > 0 else None
        floor = None if ob.floor_m is None else np.asarray(ob.floor_m, np.float64).reshape(2)
        s = Sighting(
            ob.camera_id, int(ob.track_id), int(ob.timestamp_ns), floor, emb, online=online, feet_cut=ob.feet_cut
        )
        t = self.current.get(key)
        if t is None:
            t = self._new_tracklet(*key)
        t.add(s)
        if floor is not None:
            if t.good_floor is None:
                t.good_floor, t.good_ns = floor, s.ts_ns
            else:
                dt = (s.ts_ns - t.good_ns) / 1e9
                if np.linalg.norm(floor - t.good_floor) > o.jump_m + o.max_speed_mps * dt:
                    t.suspects += 1
                    if t.suspects >= o.jump_confirm and len(t.sightings) > t.suspects:
                        tail = [x.floor_m for x in t.sightings[-t.suspects :] if x.floor_m is not None]
                        if all(np.linalg.norm(p - tail[0]) <= o.jump_m + o.max_speed_mps * 1.0 for p in tail):
                            t = self._cut(t, t.suspects, "jump")
                else:
                    t.suspects = 0
                    t.good_floor, t.good_ns = floor, s.ts_ns
        self._appearance_break(t)
        return s

    def _appearance_break(self, t: Tracklet) -> None:
        o = self.options
        if o.break_threshold <= 0 or len(t.sightings) < o.break_min_steps + o.break_steps:
            return
        tail = [s.embedding for s in t.sightings[-o.break_steps :] if s.embedding is not None]
        if len(tail) < o.break_steps or t._emb_sum is None:
            return
        recent = np.sum(tail, axis=0)
        rest = t._emb_sum - recent
        nr, nh = float(np.linalg.norm(recent)), float(np.linalg.norm(rest))
        if nr <= 0 or nh <= 0:
            return
        if float(recent @ rest) / (nr * nh) < o.break_threshold:
            self._cut(t, o.break_steps, "appearance")

    def _pair_key(self, a: Tracklet, b: Tracklet) -> tuple[int, int]:
        return (a.uid, b.uid) if a.uid < b.uid else (b.uid, a.uid)

    def _pair_evidence(self, a: Sighting, b: Sighting) -> None:
        """Evidence of two sightings at one instant: same camera, two people; else their floor distance."""
        ta, tb = a.tracklet, b.tracklet
        if ta is None or tb is None or ta is tb:
            return
        k = self._pair_key(ta, tb)
        if a.camera_id == b.camera_id:
            self._apart.add(k)
        elif a.floor_m is not None and b.floor_m is not None:
            self._together.setdefault(k, []).append(float(np.linalg.norm(a.floor_m - b.floor_m)))

    def _record_instant(self, sightings: list[Sighting]) -> None:
        for i, a in enumerate(sightings):
            for b in sightings[i + 1 :]:
                self._pair_evidence(a, b)

    def _partner_cuts(self, instant: list[Sighting]) -> None:
        """Cut a tracklet whose floor point has been, for ``partner_confirm`` steps, farther than
        ``partner_distance_m`` from every present partner (a tracklet of another camera it agreed with at
        ``partner_min_agree`` or more instants): its tracker has moved to someone else, the partners have not."""
        o = self.options
        if o.partner_confirm <= 0:
            return
        floors = [s for s in instant if s.floor_m is not None and s.tracklet is not None]
        cut = []
        for x in floors:
            t = x.tracklet
            assert t is not None
            present = 0
            away = 0
            for y in floors:
                u = y.tracklet
                if y.camera_id == x.camera_id or u is None or u is t:
                    continue
                d = self._together.get(self._pair_key(t, u), [])
                if sum(v <= o.agree_m for v in d) < o.partner_min_agree:
                    continue
                present += 1
                away += float(np.linalg.norm(x.floor_m - y.floor_m)) > o.partner_distance_m
            t.strays = t.strays + 1 if present and away == present else 0
            if t.strays >= o.partner_confirm and len(t.sightings) > t.strays:
                cut.append(t)
        for t in cut:
            n = t.strays
            t.strays = 0
            self._cut(t, n, "partner")

    def _redo_pairs(self, tracklets: list[Tracklet]) -> None:
        """After a cut: forget the pair evidence of these tracklets and gather it again from their sightings."""
        uids = {t.uid for t in tracklets}
        self._together = {k: v for k, v in self._together.items() if k[0] not in uids and k[1] not in uids}
        self._apart = {k for k in self._apart if k[0] not in uids and k[1] not in uids}
        done: set[tuple[int, int]] = set()
        for t in tracklets:
            for s in t.sightings:
                for other in self._instants.get(s.ts_ns, []):
                    if other is s or other.tracklet is None or other.tracklet is t:
                        continue
                    pair = (id(s), id(other)) if id(s) < id(other) else (id(other), id(s))
                    if pair not in done:
                        done.add(pair)
                        self._pair_evidence(s, other)

    # ---- association ---------------------------------------------------------------------------------------
    def _score_matrix(self, nodes: list[list[Tracklet]]) -> tuple[np.ndarray, np.ndarray]:
        """Per pair of tracklets: evidence margin (>= 0 links) and cannot-link; returns tracklet-level matrices."""
        o = self.options
        flat = [t for group in nodes for t in group]
        n = len(flat)
        score = np.full((n, n), NEG)
        cannot = np.zeros((n, n), bool)
        if n < 2:
            return score, cannot
        dim = next((t._emb_sum.shape[0] for t in flat if t._emb_sum is not None), 0)
        means = np.zeros((n, max(dim, 1)), np.float32)
        has_emb = np.zeros(n, bool)
        for i, t in enumerate(flat):
            m = t.mean_embedding()
            if m is not None:
                means[i], has_emb[i] = m, True
        app = means @ means.T
        starts = np.array([t.start_ns for t in flat], np.int64)
        ends = np.array([t.end_ns for t in flat], np.int64)
        fl = [t.ends(o.velocity_span_s) for t in flat]
        w = o.floor_weight
        for i in range(n):
            a = flat[i]
            for j in range(i + 1, n):
                b = flat[j]
                if a.label is not None and b.label is not None:
                    continue  # final decisions stay final
                k = self._pair_key(a, b)
                if k in self._apart:
                    cannot[i, j] = True
                    continue
                both_app = has_emb[i] and has_emb[j]
                ap = float(app[i, j]) if both_app else 0.0
                overlap = starts[i] <= ends[j] and starts[j] <= ends[i]
                d = self._together.get(k)
                if d:
                    med = float(np.median(d))
                    if med > o.agree_m:
                        cannot[i, j] = True
                        continue
                    agreement = 1.0 - med / o.agree_m
                    score[i, j] = ((1 - w) * ap + w * agreement if both_app else agreement) - o.link_threshold
                    continue
                if overlap:
                    if a.camera_id == b.camera_id:
                        cannot[i, j] = True  # one camera, overlapping in time, never at one instant: still two
                        continue
                    if both_app:
                        score[i, j] = ap - o.reentry_threshold
                    continue
                first, second, fi, si = (a, b, i, j) if ends[i] < starts[j] else (b, a, j, i)
                gap_s = (starts[si] - ends[fi]) / 1e9
                if first.camera_id != second.camera_id:
                    fastest = self.links.fastest(first.camera_id, second.camera_id, o.link_min_handovers)
                    if fastest is not None and gap_s < o.link_speedup * fastest:
                        cannot[i, j] = True
                        continue
                e1, e2 = fl[fi], fl[si]
                if e1.last is not None and e2.first is not None:
                    dt = max((e2.first_ns - e1.last_ns) / 1e9, 0.0)
                    dist = float(np.linalg.norm(e2.first - e1.last))
                    reach = o.floor_slack_m + o.max_speed_mps * dt
                    if dist > reach:
                        cannot[i, j] = True
                        continue
                    if dt <= o.recent_s:
                        agreement = 1.0 - dist / reach
                        score[i, j] = ((1 - w) * ap + w * agreement if both_app else agreement) - o.link_threshold
                        continue
                    if dt <= o.handover_s and both_app and _walk_continues(e1.last_v, e2.first_v, o):
                        # Across unseen ground: where each end's walk leads, against where the other one is.
                        err = 0.5 * float(
                            np.linalg.norm(e1.last + e1.last_v * dt - e2.first)
                            + np.linalg.norm(e2.first - e2.first_v * dt - e1.last)
                        )
                        agreement = 1.0 - err / (o.floor_slack_m + o.walk_spread_mps * dt)
                        if agreement > 0:
                            score[i, j] = (1 - w) * ap + w * agreement - o.link_threshold
                            continue
                if both_app:
                    score[i, j] = ap - o.reentry_threshold
        score = np.maximum(score, score.T)
        cannot = cannot | cannot.T
        if o.prior is not None:
            prior = np.array([-1 if t.prior is None else t.prior for t in flat])
            same = (prior[:, None] == prior[None, :]) & (prior[:, None] >= 0)
            both_final = np.array([t.label is not None for t in flat])
            same &= ~(both_final[:, None] & both_final[None, :])
            np.fill_diagonal(same, False)
            score = np.where(
                same, np.maximum(score, o.prior_margin), np.where(score > NEG / 2, score - o.prior_penalty, score)
            )
        return score, cannot

    def _cluster(self, nodes: list[list[Tracklet]]) -> list[list[Tracklet]]:
        """Greedy constrained agglomeration: merge the best-scoring pair of groups while its margin is >= 0;
        a group's score is its best tracklet pair, and any cannot-link between two groups keeps them apart."""
        score_t, cannot_t = self._score_matrix(nodes)
        sizes = [len(g) for g in nodes]
        idx = np.repeat(np.arange(len(nodes)), sizes)
        m = len(nodes)
        # Group-level matrices: max score, any cannot.
        score = np.full((m, m), NEG)
        cannot = np.zeros((m, m), bool)
        np.maximum.at(score, (idx[:, None], idx[None, :]), score_t)
        np.logical_or.at(cannot, (idx[:, None], idx[None, :]), cannot_t)
        final = np.array([g[0].label is not None for g in nodes])
        cannot |= final[:, None] & final[None, :]
        np.fill_diagonal(cannot, True)
        groups = [list(g) for g in nodes]
        alive = np.ones(m, bool)
        while True:
            eff = np.where(cannot | ~alive[:, None] | ~alive[None, :], NEG, score)
            flat = int(np.argmax(eff))
            i, j = divmod(flat, m)
            if eff[i, j] < 0:
                break
            if final[j] and not final[i]:
                i, j = j, i
            groups[i].extend(groups[j])
            groups[j] = []
            alive[j] = False
            score[i] = np.maximum(score[i], score[j])
            score[:, i] = score[i]
            cannot[i] |= cannot[j]
            cannot[:, i] = cannot[i]
            cannot[i, i] = True
            final[i] = final[i] or final[j]
        return [g for g in groups if g]

    def _label(self, groups: list[list[Tracklet]]) -> None:
        """Give each group a global id: a final group keeps its own; others take the id their tracklets were last
        sent with (one group per id, most sightings first), else a new one."""
        free: list[list[Tracklet]] = []
        owned: set[int] = set()
        for g in groups:
            lab = next((t.label for t in g if t.label is not None), None)
            if lab is None:
                free.append(g)
                continue
            owned.add(lab)
            for t in g:
                t.provisional = lab
        if not free:
            return
        cands = sorted({t.provisional for g in free for t in g if t.provisional is not None} - owned)
        col = {gid: c for c, gid in enumerate(cands)}
        weight = np.zeros((len(free), len(cands)))
        for r, g in enumerate(free):
            for t in g:
                if t.provisional in col:
                    weight[r, col[t.provisional]] += len(t.sightings)
        chosen: dict[int, int] = {}
        if cands:
            rows, cols = linear_sum_assignment(-weight)
            chosen = {r: cands[c] for r, c in zip(rows, cols, strict=True) if weight[r, c] > 0}
        for r, g in enumerate(free):
            gid = chosen.get(r)
            if gid is None:
                gid = self._next_id
                self._next_id += 1
            for t in g:
                t.provisional = gid

    def _solve(self) -> None:
        finals: dict[int, list[Tracklet]] = {}
        nodes: list[list[Tracklet]] = []
        for t in self.tracklets:
            if not t.sightings:
                continue
            if t.label is None:
                nodes.append([t])
            else:
                finals.setdefault(t.label, []).append(t)
        nodes.extend(finals.values())
        groups = self._cluster(nodes)
        self._label(groups)

    # ---- output --------------------------------------------------------------------------------------------
    def _finalise(self, now_ns: int) -> list[Change]:
        o = self.options
        edge = now_ns - int(o.window_s * 1e9)
        changes = []
        for t in self.tracklets:
            if t.label is not None or not t.sightings or t.start_ns > edge:
                continue
            t.label = t.provisional
            for gid, since in sorted(t.emitted.items(), key=lambda kv: kv[1]):
                if gid != t.label:
                    changes.append(Change(t.camera_id, t.track_id, gid, t.label, since))
            self._learn_link(t)
        return changes

    def _learn_link(self, t: Tracklet) -> None:
        """A final tracklet that continues, in another camera, a final tracklet of its person that ended shortly
        before (confident: floor-walkable and final) teaches the walk time between the two cameras."""
        o = self.options
        prev = [
            u
            for u in self.tracklets
            if u is not t and u.label == t.label and u.camera_id != t.camera_id and u.end_ns < t.start_ns
        ]
        if not prev:
            return
        u = max(prev, key=lambda x: x.end_ns)
        gap_s = (t.start_ns - u.end_ns) / 1e9
        if gap_s <= o.recent_s * 5:
            self.links.learn(u.camera_id, t.camera_id, gap_s)

    def _retire(self, now_ns: int) -> None:
        cutoff = now_ns - int(self.options.horizon_s * 1e9)
        keep = []
        for t in self.tracklets:
            if (
                t.label is not None
                and t.sightings
                and t.end_ns < cutoff
                and self.current.get((t.camera_id, t.track_id)) is not t
            ):
                continue
            if t.sightings or self.current.get((t.camera_id, t.track_id)) is t:
                keep.append(t)
        gone = {t.uid for t in self.tracklets} - {t.uid for t in keep}
        if gone:
            self._together = {k: v for k, v in self._together.items() if k[0] not in gone and k[1] not in gone}
            self._apart = {k for k in self._apart if k[0] not in gone and k[1] not in gone}
        self.tracklets = keep
        self._instants = {ts: v for ts, v in self._instants.items() if ts >= cutoff}
        self.current = {k: t for k, t in self.current.items() if t.sightings and t.end_ns >= cutoff}

    def step(self, observations: list[Observation], now_ns: int = 0) -> WindowStep:
        """Add one instant's observations (``now_ns``: the step's media time, for a step without any); returns live
        ids, newly settled sightings and changes."""
        if not observations and now_ns <= 0:
            return WindowStep([], [], [], self.through_ns)
        now = max([int(ob.timestamp_ns) for ob in observations] + [int(now_ns)])
        if now < self.now_ns:
            raise ValueError("observations must not go back in time")
        self.now_ns = now
        if not observations:
            changes = self._finalise(now)
            settled = self._settle(now - int(self.options.window_s * 1e9))
            self._retire(now)
            return WindowStep([], settled, changes, self.through_ns)
        online = (
            [None] * len(observations) if self.gallery is None else [g for _, _, g in self.gallery.step(observations)]
        )
        new = [self._add(ob, g) for ob, g in zip(observations, online, strict=True)]
        for s in new:
            self._instants.setdefault(s.ts_ns, []).append(s)
        self.pending.extend(new)
        self._record_instant(new)
        self._partner_cuts(new)
        self._solve()
        live = []
        for s in new:
            t = s.tracklet
            assert t is not None
            gid = t.label if t.label is not None else t.provisional
            assert gid is not None
            t.emitted.setdefault(gid, s.ts_ns)
            live.append((s.camera_id, s.track_id, gid))
        changes = self._finalise(now)
        settled = self._settle(now - int(self.options.window_s * 1e9))
        self._retire(now)
        return WindowStep(live, settled, changes, self.through_ns)

    def _settle(self, edge_ns: int) -> list[Settled]:
        """Release the pending sightings up to ``edge_ns`` (in time order, while their tracklets are final) and
        advance ``through_ns``."""
        out = []
        n = 0
        blocked = False
        for s in self.pending:
            if s.ts_ns > edge_ns:
                break
            t = s.tracklet
            if t is None or t.label is None:
                blocked = True
                break
            out.append(Settled(s.camera_id, s.track_id, s.ts_ns, t.label, t.uid))
            n += 1
        del self.pending[:n]
        if blocked:
            self.through_ns = max(self.through_ns, self.pending[0].ts_ns - 1)
        else:
            self.through_ns = max(self.through_ns, edge_ns)
        return out

    def flush(self) -> tuple[list[Settled], list[Change]]:
        """End of stream: every tracklet becomes final now; returns the remaining settled sightings and changes."""
        changes = self._finalise(self.now_ns + int(self.options.window_s * 1e9) + 1)
        return self._settle(self.now_ns), changes

    @property
    def embedding_dim(self) -> int:
        """Length of this window's embeddings (0 before the first one)."""
        return next((int(t._emb_sum.shape[0]) for t in self.tracklets if t._emb_sum is not None), 0)

    # ---- operators' corrections (binding: the tracklets they touch become final with the operator's id) ---------
    def known_ids(self) -> set[int]:
        """Global ids of the tracklets held (the window's and the final ones within the horizon)."""
        return {g for t in self.tracklets for g in (t.label, t.provisional) if g is not None}

    def merge(self, into: int, source: int) -> int:
        """Operator correction: every tracklet held with id ``source`` (or ``into``) is ``into`` for good (final),
        so the window never separates them again; later tracklets may still join them on evidence."""
        from spoton.bootstrap.errors import NotFoundError

        if into == source:
            raise ValueError("cannot merge a person into itself")
        known = self.known_ids()
        for gid in (into, source):
            if gid not in known:
                raise NotFoundError(f"unknown global id {gid}")
        for t in self.tracklets:
            gid = t.label if t.label is not None else t.provisional
            if gid in (into, source):
                t.label = t.provisional = into
        return into

    def split(self, camera_id: str, track_id: int) -> tuple[int, int]:
        """Operator correction: from its next sighting on, the local track is a new person for good (a final
        tracklet of its own); what it showed before keeps its id. Returns (old id, new id)."""
        from spoton.bootstrap.errors import NotFoundError

        t = self.current.get((camera_id, int(track_id)))
        if t is None or not t.sightings:
            raise NotFoundError(f"unknown track {track_id} in camera {camera_id!r}")
        old = t.label if t.label is not None else t.provisional
        new = self._new_tracklet(camera_id, int(track_id))
        new.label = new.provisional = self._next_id
        self._next_id += 1
        return int(old if old is not None else new.label), new.label

    # ---- persistence (reid_svc/galleries.py stores it with the gallery, DESIGN §8) ---------------------------
    def to_bytes(self) -> bytes:
        """The window's state as one ``.npz`` (JSON metadata + float32 arrays, no pickle), for a replica that takes
        the session over. Per-sighting embeddings are kept only for the last ``KEEP_EMBEDDINGS`` sightings of a
        local track's current tracklet (all a cut or an appearance break reads); each tracklet keeps its sum."""
        rows: list[np.ndarray] = []

        def row(v: np.ndarray | None) -> int:
            if v is None:
                return -1
            rows.append(np.asarray(v, np.float32))
            return len(rows) - 1

        current = {id(t) for t in self.current.values()}
        keep = max(KEEP_EMBEDDINGS, self.options.break_steps + 2)
        index: dict[int, tuple[int, int]] = {}
        tracklets = []
        for t in self.tracklets:
            first_kept = len(t.sightings) - keep if id(t) in current else len(t.sightings)
            sightings = []
            for k, s in enumerate(t.sightings):
                index[id(s)] = (t.uid, k)
                sightings.append(
                    [
                        s.ts_ns,
                        None if s.floor_m is None else [float(v) for v in s.floor_m],
                        row(s.embedding) if k >= first_kept else -1,
                        s.online,
                        s.feet_cut,
                    ]
                )
            tracklets.append(
                {
                    "uid": t.uid,
                    "camera_id": t.camera_id,
                    "track_id": t.track_id,
                    "sightings": sightings,
                    "label": t.label,
                    "provisional": t.provisional,
                    "emitted": [[g, ns] for g, ns in t.emitted.items()],
                    "suspects": t.suspects,
                    "strays": t.strays,
                    "good_floor": None if t.good_floor is None else [float(v) for v in t.good_floor],
                    "good_ns": t.good_ns,
                    "emb_sum": row(t._emb_sum),
                    "emb_n": t._emb_n,
                    "votes": [[g, n] for g, n in t.votes.items()],
                }
            )
        meta = {
            "options": asdict(self.options),
            "tracklets": tracklets,
            "current": [[c, k, t.uid] for (c, k), t in self.current.items()],
            "pending": [index[id(s)] for s in self.pending if id(s) in index],
            "links": [[a, b, g] for (a, b), g in self.links.gaps.items()],
            "cuts": self.cuts,
            "together": [[a, b, d] for (a, b), d in self._together.items()],
            "apart": sorted([a, b] for a, b in self._apart),
            "uid": self._uid,
            "next_id": self._next_id,
            "now_ns": self.now_ns,
            "through_ns": self.through_ns,
        }
        arrays = {"embeddings": np.stack(rows) if rows else np.zeros((0, 0), np.float32)}
        if self.gallery is not None:
            gmeta, gemb = self.gallery.to_state()
            meta["prior_gallery"] = gmeta
            arrays["prior_embeddings"] = gemb
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrackletWindow:
        """A window as ``to_bytes`` stored it (ValueError when the blob is not one)."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                emb = z["embeddings"]
                prior_emb = z["prior_embeddings"] if "prior_embeddings" in z.files else None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a stored tracklet window: {exc}") from exc
        opts = dict(meta["options"])
        if opts.get("prior") is not None:
            opts["prior"] = AssociationOptions(**opts["prior"])
        w = cls(WindowOptions(**opts))
        if w.gallery is not None and "prior_gallery" in meta and prior_emb is not None:
            w.gallery = IdentityGallery.from_state(meta["prior_gallery"], prior_emb, w.options.prior)

        def vec(r: int) -> np.ndarray | None:
            return None if r < 0 else emb[r].copy()

        by_uid: dict[int, Tracklet] = {}
        for d in meta["tracklets"]:
            t = Tracklet(int(d["uid"]), d["camera_id"], int(d["track_id"]))
            for ts, floor, r, online, *rest in d["sightings"]:  # rest: [feet_cut], absent in older windows
                s = Sighting(
                    t.camera_id,
                    t.track_id,
                    int(ts),
                    None if floor is None else np.asarray(floor, np.float64),
                    vec(int(r)),
                    tracklet=t,
                    online=online,
                    feet_cut=bool(rest[0]) if rest else False,
                )
                t.sightings.append(s)
            t.label, t.provisional = d["label"], d["provisional"]
            t.emitted = {int(g): int(ns) for g, ns in d["emitted"]}
            t.suspects, t.strays = int(d["suspects"]), int(d["strays"])
            t.good_floor = None if d["good_floor"] is None else np.asarray(d["good_floor"], np.float64)
            t.good_ns = int(d["good_ns"])
            t._emb_sum, t._emb_n = vec(int(d["emb_sum"])), int(d["emb_n"])
            t.votes = {int(g): int(n) for g, n in d["votes"]}
            by_uid[t.uid] = t
            w.tracklets.append(t)
        w.current = {(c, int(k)): by_uid[int(u)] for c, k, u in meta["current"]}
        w.pending = sorted((by_uid[int(u)].sightings[int(k)] for u, k in meta["pending"]), key=lambda s: s.ts_ns)
        for a, b, g in meta["links"]:
            w.links.gaps[(a, b)] = [float(x) for x in g]
        w.cuts = {k: int(v) for k, v in meta["cuts"].items()}
        w._together = {(int(a), int(b)): [float(x) for x in d] for a, b, d in meta["together"]}
        w._apart = {(int(a), int(b)) for a, b in meta["apart"]}
        w._uid, w._next_id = int(meta["uid"]), int(meta["next_id"])
        w.now_ns, w.through_ns = int(meta["now_ns"]), int(meta["through_ns"])
        cutoff = w.now_ns - int(w.options.horizon_s * 1e9)
        for t in w.tracklets:
            for s in t.sightings:
                if s.ts_ns >= cutoff:
                    w._instants.setdefault(s.ts_ns, []).append(s)
        return w
