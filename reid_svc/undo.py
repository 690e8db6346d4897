"""Undo of an operator's last identity correction, made of new corrections (DESIGN §6: corrections never rewrite
history), with the gallery's own ``merge`` and ``split``.

- Undo of a split (track T of person A became new person C): C is merged back into A. Reads then resolve C's rows
  to A, so the history looks as if the split never happened.
- Undo of a merge (B's tracks joined A): the tracks that joined leave A together, as one new person (the gallery
  cannot bring back B's number for the live tracks); an ``undo`` correction tells reads to stop resolving B to A, so B's
  history before the merge is B's again. What the tracks did while merged stays A's (it was written so).

The corrections the undo makes are recorded like any other (marked ``by_undo``) plus one ``{"kind": "undo",
"undoes": {...}}`` row; the undone correction is marked ``undone`` in the gallery so a second undo takes the one
before it. Pure: no grpc, no database."""

from __future__ import annotations

from dataclasses import dataclass, field

from reid_svc.identity import IdentityGallery
from spoton.bootstrap.errors import PreconditionError

OPERATOR_KINDS = ("merge", "split")


@dataclass
class Undo:
    """What an undo did: the correction undone, the local tracks whose id changed (camera, track, from, to, reason),
    from when (media ns), and the corrections to record, in order."""

    undone: dict
    changes: list[tuple[str, int, int, int, str]] = field(default_factory=list)
    since_ns: int = 0
    records: list[dict] = field(default_factory=list)


def merge_recorded(gallery: IdentityGallery, into: int, source: int) -> tuple[int, list[tuple[str, int]], int]:
    """``gallery.merge(into, source)`` with the local tracks that moved written into its correction (what an undo
    takes back out); returns the person, those tracks and ``source``'s first sighting (media ns)."""
    person = gallery.persons.get(source)
    since_ns = person.first_seen_ns if person is not None else 0
    moved = sorted(key for key, gid in gallery.assignment.items() if gid == source)
    gid = gallery.merge(into, source)
    gallery.corrections[-1]["tracks"] = [[c, t] for c, t in moved]
    return gid, moved, since_ns


def last_undoable(gallery: IdentityGallery) -> dict:
    """The latest operator correction neither undone nor made by an undo."""
    for c in reversed(gallery.corrections):
        if c.get("kind") in OPERATOR_KINDS and not c.get("undone") and not c.get("by_undo"):
            return c
    raise PreconditionError("no correction to undo in this session")


def undo_last(gallery: IdentityGallery) -> Undo:
    """Undo the session's last operator correction (see the module's docstring)."""
    target = last_undoable(gallery)
    before = len(gallery.corrections)
    if target["kind"] == "split":
        into, source = int(target["from"]), int(target["into"])
        gone = [g for g in (into, source) if g not in gallery.persons]
        if gone:
            raise PreconditionError(f"cannot undo the split: person {gone[0]} is gone")
        since = gallery.persons[source].first_seen_ns
        moved = sorted(key for key, gid in gallery.assignment.items() if gid == source)
        gallery.merge(into, source)
        result = Undo(target, [(c, t, source, into, "merge") for c, t in moved], since)
    else:
        person = int(target["into"])
        tracks = [(c, int(t)) for c, t in target.get("tracks", [])]
        still = [key for key in tracks if gallery.assignment.get(key) == person]
        if not still:
            raise PreconditionError("cannot undo the merge: none of the tracks that joined is still with the person")
        since = gallery.persons[person].last_seen_ns if person in gallery.persons else 0
        new = gallery.split(*still[0])
        for key in still[1:]:
            gallery.merge(new, gallery.split(*key))
        result = Undo(target, [(c, t, person, new, "split") for c, t in still], since)
    for c in gallery.corrections[before:]:
        c["by_undo"] = True
    undone = {k: v for k, v in target.items() if k not in ("undone", "by_undo")}
    gallery.corrections.append({"kind": "undo", "undoes": undone})
    target["undone"] = True
    result.records = gallery.corrections[before:]
    return result
