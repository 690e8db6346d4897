"""Identity corrections as reads see them (spoton/corrections.py) and the undo of the last one (reid_svc/undo.py),
on a real IdentityGallery (pure core, no services)."""

from __future__ import annotations

import pytest

from reid_svc.identity import IdentityGallery
from reid_svc.undo import merge_recorded, undo_last
from spoton.bootstrap.errors import PreconditionError
from spoton.corrections import follow_merges, merge_pairs
from tests.test_identity import A, B, gid, ob

M = {"kind": "merge"}


@pytest.mark.parametrize(
    ("rows", "resolved"),
    [
        ([], {}),
        ([("merge", {"into": 1, "from": 2})], {2: 1}),
        ([("merge", {"into": 2, "from": 3}), ("merge", {"into": 1, "from": 2})], {3: 1, 2: 1}),
        ([("merge", {"into": 1, "from": 2}), ("undo", {"undoes": {**M, "into": 1, "from": 2}})], {}),
        # Undone, then merged again: in effect again.
        (
            [
                ("merge", {"into": 1, "from": 2}),
                ("undo", {"undoes": {**M, "into": 1, "from": 2}}),
                ("merge", {"into": 1, "from": 2}),
            ],
            {2: 1},
        ),
        # The undo of a split is itself a merge (the new person back into the old one): it stays.
        (
            [
                ("split", {"camera_id": "c", "track_id": 4, "from": 1, "into": 5}),
                ("merge", {"into": 1, "from": 5}),
                ("undo", {"undoes": {"kind": "split", "camera_id": "c", "track_id": 4, "from": 1, "into": 5}}),
            ],
            {5: 1},
        ),
        # Only the undone merge goes; the chain through the other stays.
        (
            [
                ("merge", {"into": 2, "from": 3}),
                ("merge", {"into": 1, "from": 2}),
                ("undo", {"undoes": {**M, "into": 1, "from": 2}}),
            ],
            {3: 2},
        ),
    ],
)
def test_reads_resolve_merges_still_in_effect(rows: list, resolved: dict) -> None:
    assert follow_merges(merge_pairs(rows)) == resolved


def two_people() -> tuple[IdentityGallery, int, int]:
    g = IdentityGallery()
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam1", 2, 0, B, (9, 9)), ob("cam2", 7, 0, B, (9, 9))])
    a, b = gid(r, "cam1", 1), gid(r, "cam1", 2)
    assert gid(r, "cam2", 7) == b
    return g, a, b


def test_undo_of_a_split_gives_the_track_back_to_its_person() -> None:
    g, a, b = two_people()
    new = g.split("cam1", 2)
    assert gid(g.step([ob("cam1", 2, 0.1, B, (9, 9))]), "cam1", 2) == new
    done = undo_last(g)
    assert done.undone["kind"] == "split" and done.changes == [("cam1", 2, new, b, "merge")]
    step = g.step([ob("cam1", 1, 0.2, A, (0, 0)), ob("cam1", 2, 0.2, B, (9, 9)), ob("cam2", 7, 0.2, B, (9, 9))])
    assert gid(step, "cam1", 2) == b and gid(step, "cam1", 1) == a
    # Recorded: the merge it made (marked) and the undo row; reads resolve the split-off person back.
    kinds = [(c["kind"], c.get("by_undo", False)) for c in done.records]
    assert kinds == [("merge", True), ("undo", False)]
    rows = [(c["kind"], c) for c in g.corrections]
    assert follow_merges(merge_pairs(rows)) == {new: b}
    with pytest.raises(PreconditionError, match="no correction to undo"):
        undo_last(g)


def test_undo_of_a_merge_takes_the_tracks_back_out_and_reads_forget_it() -> None:
    g, a, b = two_people()
    into, moved, since = merge_recorded(g, a, b)
    assert into == a and moved == [("cam1", 2), ("cam2", 7)] and since == 0
    rows = [(c["kind"], c) for c in g.corrections]
    assert follow_merges(merge_pairs(rows)) == {b: a}
    step = g.step([ob("cam1", 2, 0.1, B, (9, 9)), ob("cam2", 7, 0.1, B, (9, 9))])
    assert gid(step, "cam1", 2) == a and gid(step, "cam2", 7) == a
    done = undo_last(g)
    new = done.changes[0][3]
    assert done.undone["kind"] == "merge" and new not in (a, b)
    assert done.changes == [("cam1", 2, a, new, "split"), ("cam2", 7, a, new, "split")]
    # Both tracks leave together, as one person; the merge is no longer resolved by reads.
    step = g.step([ob("cam1", 1, 0.2, A, (0, 0)), ob("cam1", 2, 0.2, B, (9, 9)), ob("cam2", 7, 0.2, B, (9, 9))])
    assert gid(step, "cam1", 2) == new and gid(step, "cam2", 7) == new and gid(step, "cam1", 1) == a
    assert [c["kind"] for c in done.records] == ["split", "split", "merge", "undo"]
    rows = [(c["kind"], c) for c in g.corrections]
    second = done.records[1]["into"]  # the second track's own split-off person, merged into the first's
    assert follow_merges(merge_pairs(rows)) == {second: new}
    with pytest.raises(PreconditionError):
        undo_last(g)
