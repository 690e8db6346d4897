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

from reid_svc.identity import AssociationOptions, IdentityGallery
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

    async def save(self, session_id: str, gallery: IdentityGallery) -> None:
        meta, embeddings = gallery.to_state()
        blob = await asyncio.to_thread(_npy, embeddings)
        options = dataclasses.asdict(gallery.options)
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO galleries (session_id, options, state, embeddings) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (session_id) DO UPDATE SET options = EXCLUDED.options, state = EXCLUDED.state, "
                "embeddings = EXCLUDED.embeddings, updated_at = now()",
                (session_id, Jsonb(options), Jsonb(meta), blob),
            )

    async def load(self, session_id: str) -> IdentityGallery | None:
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT options, state, embeddings FROM galleries WHERE session_id = %s", (session_id,)
                )
            ).fetchone()
        if row is None:
            return None
        options, meta, blob = row
        embeddings = np.load(io.BytesIO(blob), allow_pickle=False)
        known = {f.name for f in dataclasses.fields(AssociationOptions)}
        opts = AssociationOptions(**{k: v for k, v in options.items() if k in known})
        return IdentityGallery.from_state(meta, embeddings, opts)

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
        """Delete a session's gallery and corrections; returns how many of each."""
        async with self.pool.connection() as conn, conn.transaction():
            galleries = (await conn.execute("DELETE FROM galleries WHERE session_id = %s", (session_id,))).rowcount
            corrections = (
                await conn.execute("DELETE FROM identity_corrections WHERE session_id = %s", (session_id,))
            ).rowcount
            return galleries, corrections

    async def delete(self, session_id: str) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM galleries WHERE session_id = %s", (session_id,))
            await conn.execute("DELETE FROM identity_corrections WHERE session_id = %s", (session_id,))
            return cur.rowcount
