"""Pending history on local disk (DESIGN §6): each batch a JSON file, fsynced before it is committed and deleted
once it is; a dead gateway's spool (its directory lock free) is claimed and replayed by another."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import psycopg

from gateway.rows import AlertRow, Batch, TrackPoint, ZoneEventRow

log = logging.getLogger("gateway.history")


def _json_default(value: object) -> object:
    """numpy scalars as Python numbers, datetimes as ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot spool {type(value).__name__}")


def encode_batch(batch: Batch) -> bytes:
    """A batch as one JSON document (no pickle: a spool on a shared volume must not be able to run code)."""
    doc = {"rows": batch.rows, "events": batch.events, "alerts": batch.alerts}
    return json.dumps(doc, default=_json_default, separators=(",", ":")).encode()


def decode_batch(data: bytes) -> Batch:
    doc = json.loads(data)

    def rows(kind: type[NamedTuple], items: list[list]) -> list:
        return [kind(datetime.fromisoformat(r[0]), *r[1:]) for r in items]

    return Batch(rows(TrackPoint, doc["rows"]), rows(ZoneEventRow, doc["events"]), rows(AlertRow, doc["alerts"]))


class Spool:
    """Pending history on local disk, one file per batch: written and fsynced before the batch is committed,
    deleted once it is. The directory is held with an exclusive ``flock`` while its writer lives, so another
    gateway that can take the lock knows the owner is dead and may replay its files (``replay_orphans``)."""

    SUFFIX = ".batch.json"
    # Track points held for their settled ids (gateway.settle), spooled only so a dead gateway loses none of them.
    HELD = ".held"

    def __init__(self, directory: Path, database: str = "") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(
                f"history spool {directory} is in use by another gateway (set HISTORY_SPOOL_DIR)"
            ) from None
        (directory / "database").write_text(database)  # whose rows these are: survivors replay only their own
        self._seq = max((int(p.name.split(".")[0]) for p in self.segments()), default=0)

    def segments(self) -> list[Path]:
        """The directory's batch files, oldest first (held copies last)."""
        return self.ordered(self.directory)

    @classmethod
    def ordered(cls, directory: Path) -> list[Path]:
        """A spool directory's batch files, oldest first, held copies after the others: replayed last, a held copy
        (provisional ids) never takes the place of its settled row (the track point key leaves the id out)."""
        files = sorted(directory.glob("*" + cls.SUFFIX))
        held = [p for p in files if p.name.endswith(cls.HELD + cls.SUFFIX)]
        return [p for p in files if p not in held] + held

    def write(self, batch: Batch, held: bool = False) -> Path:
        """Append a batch (``held``: a held copy): written to a temporary name, fsynced, renamed, directory fsynced
        (blocking I/O)."""
        self._seq += 1
        path = self.directory / f"{self._seq:012d}{self.HELD if held else ''}{self.SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(encode_batch(batch))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(self.directory)
        return path

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def database_key(url: str) -> str:
    """A database's identity without its credentials: host, port and name."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


def claim_orphan_spools(root: Path, own: Path, database: str) -> list[tuple[Path, int]]:
    """Spool directories under ``root`` whose gateway is dead (their ``flock`` can be taken) and that hold rows of
    ``database``: each returned with the lock's file descriptor, held until ``release_orphan`` so two survivors
    never replay one together."""
    claimed = []
    if not root.is_dir():
        return claimed
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and p.resolve() != own.resolve()):
        try:
            if (directory / "database").read_text() != database:
                continue
        except OSError:
            continue
        try:
            fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        claimed.append((directory, fd))
    return claimed


def release_orphan(directory: Path, fd: int, emptied: bool) -> None:
    """Unlock a claimed orphan spool; an emptied one is removed."""
    if emptied:
        with contextlib.suppress(OSError):
            for name in ("database", ".lock"):
                (directory / name).unlink()
            directory.rmdir()
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
