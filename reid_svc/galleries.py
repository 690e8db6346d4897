"""Galleries and identity corrections in PostgreSQL (reid_svc's tables, DESIGN §6).

A session's gallery is written every ``REID_GALLERY_PERSIST_S`` seconds of stream time, when its stream ends and
after each correction, so a replica that takes the session over (the first one died, DESIGN §8) resumes it with
the same persons. Without ``DATABASE_URL`` galleries live in memory only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import numpy as np
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from reid_svc.identity import AssociationOptions, IdentityGallery, Thumbnail
from reid_svc.search import SearchEntries, Sighting
from reid_svc.tracklets import TrackletWindow
from spoton.db import apply_migrations

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class GalleryStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool = AsyncConnectionPool(url, min_size=1, max_size=4, open=False)

    async def start(self) -> None:
        await asyncio.to_thread(apply_migrations, self.url, MIGRATIONS, "reid")
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def save(
        self,
        session_id: str,
        gallery: IdentityGallery,
        search: SearchEntries | None = None,
        window: bytes | None = None,
    ) -> None:
        """Store the gallery, a window-mode session's tracklet window (``TrackletWindow.to_bytes``) and, for a
        searchable session, its persons' search entries (one transaction)."""
        meta, embeddings = gallery.to_state()
        blob = await asyncio.to_thread(_npy, embeddings)
        options = dataclasses.asdict(gallery.options)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO galleries (session_id, options, state, embeddings, window_state) "
                "VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (session_id) DO UPDATE SET options = EXCLUDED.options, state = EXCLUDED.state, "
                "embeddings = EXCLUDED.embeddings, window_state = EXCLUDED.window_state, updated_at = now()",
                (session_id, Jsonb(options), Jsonb(meta), blob, window),
            )
            if search is not None:
                await self._save_search(conn, session_id, search)

    async def _save_search(self, conn, session_id: str, e: SearchEntries) -> None:  # type: ignore[no-untyped-def]
        """Upsert the live persons; drop those absorbed into another (gone from the gallery yet not retired)."""
        live = [s.global_id for s in e.sightings]
        await conn.execute(
            "DELETE FROM search_persons WHERE session_id = %s AND NOT (global_id = ANY(%s)) AND last_seen_ns >= %s",
            (session_id, live, e.retired_before_ns),
        )
        if not e.sightings:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO search_persons (session_id, global_id, video_set, model, camera_ids, first_seen_ns, "
                "last_seen_ns, embedding, thumbnail, thumbnail_ns, thumbnail_camera) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, global_id) "
                "DO UPDATE SET video_set = EXCLUDED.video_set, model = EXCLUDED.model,"
                " camera_ids = EXCLUDED.camera_ids,"
                " first_seen_ns = EXCLUDED.first_seen_ns, last_seen_ns = EXCLUDED.last_seen_ns,"
                " embedding = EXCLUDED.embedding, thumbnail = EXCLUDED.thumbnail, thumbnail_ns = EXCLUDED.thumbnail_ns,"
                " thumbnail_camera = EXCLUDED.thumbnail_camera, updated_at = clock_timestamp()",
                [
                    (
                        session_id,
                        s.global_id,
                        e.video_set,
                        e.model,
                        list(s.camera_ids),
                        s.first_seen_ns,
                        s.last_seen_ns,
                        np.asarray(v, "<f4").tobytes(),
                        t.jpeg if t is not None else None,
                        t.timestamp_ns if t is not None else None,
                        t.camera_id if t is not None else None,
                    )
                    for s, v, t in zip(e.sightings, e.vectors, e.thumbnails, strict=True)
                ],
            )

    async def search_state(self, video_set: str, model: str) -> tuple[int, object]:
        """(rows, latest update) of a video set's search entries: tells a cached index whether it is stale."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*), max(updated_at) FROM search_persons WHERE video_set = %s AND model = %s",
                    (video_set, model),
                )
            ).fetchone()
        return int(row[0]), row[1]

    async def load_search(
        self, video_set: str, model: str, since: object = None
    ) -> tuple[list[Sighting], np.ndarray, object]:
        """A video set's search entries for one embedder (those updated after ``since``), their (N, D) float32
        embeddings and the latest update time."""
        query = (
            "SELECT session_id, global_id, camera_ids, first_seen_ns, last_seen_ns, embedding, updated_at "
            "FROM search_persons WHERE video_set = %s AND model = %s"
        )
        args: tuple = (video_set, model)
        if since is not None:
            query += " AND updated_at > %s"
            args += (since,)
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(query, args)).fetchall()
        sightings = [Sighting(r[0], int(r[1]), tuple(r[2]), int(r[3]), int(r[4])) for r in rows]
        vectors = np.stack([np.frombuffer(r[5], "<f4") for r in rows]) if rows else np.zeros((0, 0), np.float32)
        return sightings, vectors, max((r[6] for r in rows), default=since)

    async def search_person(self, session_id: str, global_id: int, model: str) -> tuple[str, np.ndarray] | None:
        """(video_set, embedding) of one stored person, or None."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT video_set, embedding FROM search_persons WHERE session_id = %s AND global_id = %s "
                    "AND model = %s",
                    (session_id, global_id, model),
                )
            ).fetchone()
        return None if row is None else (row[0], np.frombuffer(row[1], "<f4"))

    async def search_thumbnail(self, session_id: str, global_id: int) -> Thumbnail | None:
        """The stored best crop of a searchable session's person (also after it retired), or None."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT thumbnail, thumbnail_ns, thumbnail_camera FROM search_persons "
                    "WHERE session_id = %s AND global_id = %s AND thumbnail IS NOT NULL",
                    (session_id, global_id),
                )
            ).fetchone()
        return None if row is None else Thumbnail(bytes(row[0]), 0.0, int(row[1]), row[2])

    async def expire_search(self, cutoff_ns: int) -> int:
        """Delete search entries of persons last seen before ``cutoff_ns`` (retention); returns the rows."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM search_persons WHERE last_seen_ns < %s", (cutoff_ns,))
            return cur.rowcount

    async def load(self, session_id: str) -> tuple[IdentityGallery, TrackletWindow | None] | None:
        """The session's stored gallery and, in window mode, its tracklet window; None when nothing is stored."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT options, state, embeddings, window_state FROM galleries WHERE session_id = %s",
                    (session_id,),
                )
            ).fetchone()
        if row is None:
            return None
        options, meta, blob, window = row
        embeddings = np.load(io.BytesIO(blob), allow_pickle=False)
        known = {f.name for f in dataclasses.fields(AssociationOptions)}
        opts = AssociationOptions(**{k: v for k, v in options.items() if k in known})
        gallery = IdentityGallery.from_state(meta, embeddings, opts)
        return gallery, None if window is None else await asyncio.to_thread(TrackletWindow.from_bytes, bytes(window))

    async def add_correction(self, session_id: str, correction: dict) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO identity_corrections (session_id, kind, detail) VALUES (%s, %s, %s)",
                (session_id, correction["kind"], Jsonb(correction)),
            )

    async def purge_older(self, older_than_s: float) -> tuple[list[str], int]:
        """Delete galleries not updated for ``older_than_s`` seconds and corrections made before then; returns the
        sessions whose gallery went and the corrections deleted."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM galleries WHERE updated_at < now() - make_interval(secs => %s) RETURNING session_id",
                (older_than_s,),
            )
            sessions = [r[0] for r in await cur.fetchall()]
            cur = await conn.execute(
                "DELETE FROM identity_corrections WHERE created_at < now() - make_interval(secs => %s)",
                (older_than_s,),
            )
            return sessions, cur.rowcount

    async def purge_session(self, session_id: str) -> tuple[int, int]:
        """Delete a session's gallery, corrections and person-search entries (one transaction); returns how many
        galleries and corrections went."""
        galleries, corrections, _ = await self._delete_session(session_id)
        return galleries, corrections

    async def delete(self, session_id: str) -> int:
        """Like ``purge_session``; returns galleries plus search entries deleted (0: nothing was kept)."""
        galleries, _, searched = await self._delete_session(session_id)
        return galleries + searched

    async def _delete_session(self, session_id: str) -> tuple[int, int, int]:
        async with self.pool.connection() as conn, conn.transaction():
            counts = [
                (await conn.execute(f"DELETE FROM {table} WHERE session_id = %s", (session_id,))).rowcount
                for table in ("galleries", "identity_corrections", "search_persons")
            ]
            return counts[0], counts[1], counts[2]
