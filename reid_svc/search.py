"""Person search: "where else was this person?" over every searchable session of a video set. Pure numpy/FAISS.

Each person of a session is represented by one embedding, the L2-normalised mean of its gallery bank (the same
embedder's space as the query). One ``PersonIndex`` per video set holds them in FAISS, keyed by (session_id,
global_id):
  * up to ``exact_max`` persons: exact inner-product search (``IndexFlatIP`` in ``IndexIDMap2``);
  * past it: an inverted-file index (``IndexIVFFlat``, inner product, ~sqrt(N) lists, ``nprobe`` probed, direct
    map so a person can be replaced or removed in place), retrained when the index has grown 4x since training.
A person's entry is replaced whenever its session's gallery is stored; a session's entries go when it is purged or
expires (``remove_session``). The persisted copy is the ``search_persons`` table (reid_svc/galleries.py).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import faiss
import numpy as np

from reid_svc.identity import IdentityGallery
from spoton.domain import l2_normalize

PersonKey = tuple[str, int]


@dataclass(frozen=True)
class Sighting:
    """One person of one session as the index knows it (times in ns since the Unix epoch, media time)."""

    session_id: str
    global_id: int
    camera_ids: tuple[str, ...]
    first_seen_ns: int
    last_seen_ns: int


@dataclass(frozen=True)
class Hit:
    sighting: Sighting
    score: float  # cosine similarity, -1..1


def representative(bank) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    """A person's search embedding from its bank of (D,) embeddings: the L2-normalised mean; None when empty."""
    if not len(bank):
        return None
    return l2_normalize(np.stack([np.asarray(v, np.float32) for v in bank]).mean(axis=0, keepdims=True))[0]


@dataclass(frozen=True)
class SearchEntries:
    """A searchable session's persons as of now: what ``search_persons`` and the index hold for it."""

    session_id: str
    video_set: str
    model: str
    sightings: list[Sighting]
    vectors: np.ndarray  # (N, D) float32, L2-normalised
    thumbnails: list  # per sighting: identity.Thumbnail or None
    # Persons of this session absent from ``sightings`` but last seen at or after this were absorbed into another
    # (an automatic join or an operator's merge) and are dropped; older ones retired and stay searchable.
    retired_before_ns: int


def gallery_entries(session_id: str, gallery: IdentityGallery, video_set: str, model: str) -> SearchEntries:
    """The search entries of a session's gallery (persons with at least one embedding)."""
    sightings, vectors, thumbnails = [], [], []
    for p in gallery.persons.values():
        v = representative(p.bank)
        if v is None:
            continue
        sightings.append(Sighting(session_id, p.global_id, tuple(sorted(p.cameras)), p.first_seen_ns, p.last_seen_ns))
        vectors.append(v)
        thumbnails.append(p.thumbnail)
    now = max((p.last_seen_ns for p in gallery.persons.values()), default=0)
    dim = vectors[0].shape[0] if vectors else 0
    return SearchEntries(
        session_id,
        video_set,
        model,
        sightings,
        np.stack(vectors) if vectors else np.zeros((0, dim), np.float32),
        thumbnails,
        now - int(gallery.options.retire_after_s * 1e9),
    )


@dataclass
class PersonIndex:
    """One video set's persons in FAISS. Thread-safe (one lock)."""

    dim: int
    exact_max: int = 20_000
    nprobe: int = 16
    _index: faiss.Index | None = None
    _approximate: bool = False
    _trained_at: int = 0
    _next_id: int = 1
    _ids: dict[PersonKey, int] = field(default_factory=dict)
    _meta: dict[int, Sighting] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def kind(self) -> str:
        return "ivf" if self._approximate else "flat"

    def upsert(self, sightings: list[Sighting], vectors: np.ndarray) -> None:
        """Add or replace persons; ``vectors`` (N, dim) L2-normalised, row i for ``sightings[i]``."""
        if not sightings:
            return
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(len(sightings), -1)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"embeddings have {vectors.shape[1]} values; this index holds {self.dim}")
        with self._lock:
            keys = [(s.session_id, s.global_id) for s in sightings]
            old = [self._ids.pop(key) for key in keys if key in self._ids]
            self._remove(old)
            ids = np.arange(self._next_id, self._next_id + len(sightings), dtype=np.int64)
            self._next_id += len(sightings)
            for i, s in zip(ids, sightings, strict=True):
                self._ids[(s.session_id, s.global_id)] = int(i)
                self._meta[int(i)] = s
            self._index.add_with_ids(vectors, ids)
            self._maybe_rebuild()

    def sync_session(self, entries: SearchEntries) -> None:
        """Apply a session's current entries: upsert them, drop its absorbed persons (see ``SearchEntries``)."""
        live = {(s.session_id, s.global_id) for s in entries.sightings}
        with self._lock:
            cutoff = entries.retired_before_ns
            gone = [
                k
                for k, i in self._ids.items()
                if k[0] == entries.session_id and k not in live and self._meta[i].last_seen_ns >= cutoff
            ]
            self._remove([self._ids.pop(k) for k in gone])
        self.upsert(entries.sightings, entries.vectors)

    def remove_session(self, session_id: str) -> int:
        """Forget every person of a session (purge, retention); returns how many."""
        with self._lock:
            keys = [k for k in self._ids if k[0] == session_id]
            self._remove([self._ids.pop(k) for k in keys])
            return len(keys)

    def remove_older_than(self, cutoff_ns: int) -> int:
        """Forget persons last seen before ``cutoff_ns``; returns how many."""
        with self._lock:
            keys = [k for k, i in self._ids.items() if self._meta[i].last_seen_ns < cutoff_ns]
            self._remove([self._ids.pop(k) for k in keys])
            return len(keys)

    def vector(self, key: PersonKey) -> np.ndarray | None:
        """The stored embedding of one person, or None."""
        with self._lock:
            i = self._ids.get(key)
            return None if i is None else self._index.reconstruct(i)

    def search(self, query: np.ndarray, k: int, exclude: PersonKey | None = None) -> list[Hit]:
        """The ``k`` persons most similar to ``query`` (D,), best first, without ``exclude``."""
        q = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, -1))
        if q.shape[1] != self.dim:
            raise ValueError(f"the query has {q.shape[1]} values; this index holds {self.dim}")
        with self._lock:
            if not self._meta:
                return []
            want = min(k + (1 if exclude is not None else 0), len(self._meta))
            scores, ids = self._index.search(q, want)
            hits = []
            for score, i in zip(scores[0], ids[0], strict=True):
                s = self._meta.get(int(i))
                if s is None or (s.session_id, s.global_id) == exclude:
                    continue
                hits.append(Hit(s, float(score)))
            return hits[:k]

    def _remove(self, ids: list[int]) -> None:
        if not ids:
            return
        for i in ids:
            del self._meta[i]
        self._index.remove_ids(np.asarray(ids, np.int64))

    def _maybe_rebuild(self) -> None:
        """Exact while small; IVF past ``exact_max``; retrain IVF when the index has grown 4x since training."""
        n = len(self._meta)
        if not self._approximate and n <= self.exact_max:
            return
        if self._approximate and n < 4 * self._trained_at:
            return
        ids = np.fromiter(self._meta, np.int64, count=n)
        vectors = self._index.reconstruct_batch(ids)
        nlist = max(1, int(np.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.nprobe = min(self.nprobe, nlist)
        index.add_with_ids(vectors, ids)
        self._index, self._approximate, self._trained_at = index, True, n


class PersonSearch:
    """This replica's indexes, one per video set, kept in step with ``search_persons`` when a store is configured
    (another replica's writes and deletions are picked up at the next search: a changed row count or update time
    reloads what changed, or everything when rows went away). ``model`` names the embedder: entries of another
    embedder live in another space and are not searched."""

    def __init__(self, store, model: str, dim: int, exact_max: int, nprobe: int, threads: int = 1) -> None:  # type: ignore[no-untyped-def]
        if threads > 0:
            faiss.omp_set_num_threads(threads)
        self.store, self.model, self.dim = store, model, dim
        self.exact_max, self.nprobe = exact_max, nprobe
        self.indexes: dict[str, PersonIndex] = {}
        self._state: dict[str, tuple[int, object]] = {}
        self._lock = asyncio.Lock()

    def _new(self) -> PersonIndex:
        return PersonIndex(self.dim, self.exact_max, self.nprobe)

    async def index(self, video_set: str) -> PersonIndex:
        """The video set's index, current with the database."""
        async with self._lock:
            idx = self.indexes.get(video_set)
            if self.store is None:
                return self.indexes.setdefault(video_set, self._new())
            state = await self.store.search_state(video_set, self.model)
            cached = self._state.get(video_set)
            if idx is not None and cached == state:
                return idx
            if idx is not None and cached is not None and state[0] >= cached[0]:
                sightings, vectors, _ = await self.store.load_search(video_set, self.model, since=cached[1])
                await asyncio.to_thread(idx.upsert, sightings, vectors)
                if len(idx) == state[0]:
                    self._state[video_set] = state
                    return idx
            sightings, vectors, _ = await self.store.load_search(video_set, self.model)
            idx = self._new()
            await asyncio.to_thread(idx.upsert, sightings, vectors)
            self.indexes[video_set], self._state[video_set] = idx, state
            return idx

    async def update(self, entries: SearchEntries) -> None:
        """A searchable session's gallery changed: apply it to the loaded index (or start one, without a store)."""
        idx = self.indexes.get(entries.video_set)
        if idx is None and self.store is None:
            idx = self.indexes.setdefault(entries.video_set, self._new())
        if idx is not None:
            await asyncio.to_thread(idx.sync_session, entries)

    def remove_session(self, session_id: str) -> int:
        return sum(idx.remove_session(session_id) for idx in self.indexes.values())

    def expire(self, cutoff_ns: int) -> int:
        return sum(idx.remove_older_than(cutoff_ns) for idx in self.indexes.values())
