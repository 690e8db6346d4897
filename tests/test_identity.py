"""Global identity rule (pure core)."""

from __future__ import annotations

import numpy as np
import pytest

from reid_svc.identity import AssociationOptions, IdentityGallery, Observation
from spoton.bootstrap.errors import NotFoundError

RNG = np.random.default_rng(7)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


A, B = unit(RNG.normal(size=64)), unit(RNG.normal(size=64))
S = 1_000_000_000


def ob(cam: str, tid: int, t: float, emb: np.ndarray | None, floor: tuple[float, float] | None) -> Observation:
    return Observation(cam, tid, int(t * S), emb, None if floor is None else np.array(floor, float))


def gid(result, cam, tid):  # type: ignore[no-untyped-def]
    return {(c, t): g for c, t, g in result}[(cam, tid)]


def test_simultaneous_sightings_at_one_floor_point_are_one_person() -> None:
    g = IdentityGallery()
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam2", 5, 0, A + 0.05 * B, (0.3, 0.1)), ob("cam1", 2, 0, B, (6, 6))])
    assert gid(r, "cam1", 1) == gid(r, "cam2", 5) != gid(r, "cam1", 2)


def test_same_look_far_apart_at_the_same_instant_are_two_people() -> None:
    g = IdentityGallery()
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam2", 1, 0, A, (8, 0))])
    assert gid(r, "cam1", 1) != gid(r, "cam2", 1)


def test_two_tracks_in_one_camera_are_two_people() -> None:
    g = IdentityGallery()
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam1", 2, 0, A, (0.2, 0))])
    assert gid(r, "cam1", 1) != gid(r, "cam1", 2)


def test_decisions_stick_to_the_local_track() -> None:
    g = IdentityGallery()
    first = gid(g.step([ob("cam1", 1, 0, A, (0, 0))]), "cam1", 1)
    # The same track later looks different and stands elsewhere: it keeps its id (hysteresis).
    assert gid(g.step([ob("cam1", 1, 0.2, B, (0.5, 0))]), "cam1", 1) == first


def test_reappearing_person_is_recognised_by_appearance_within_speed_limit() -> None:
    g = IdentityGallery(AssociationOptions(match_threshold=0.6))
    first = gid(g.step([ob("cam1", 1, 0, A, (0, 0))]), "cam1", 1)
    # 4 s later a new track in another camera, 3 m away: plausible walking, same look.
    assert gid(g.step([ob("cam2", 9, 4, A, (3, 0))]), "cam2", 9) == first
    # 0.5 s later, 20 m away: nobody runs 40 m/s.
    assert gid(g.step([ob("cam3", 4, 4.5, A, (23, 0))]), "cam3", 4) != first


def test_merge_split_and_stats() -> None:
    g = IdentityGallery()
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam1", 2, 0, B, (9, 9))])
    a, b = gid(r, "cam1", 1), gid(r, "cam1", 2)
    assert g.merge(a, b) == a
    assert gid(g.step([ob("cam1", 2, 0.1, B, (9, 9))]), "cam1", 2) == a
    new = g.split("cam1", 2)
    assert new not in (a, b) and gid(g.step([ob("cam1", 2, 0.2, B, (9, 9))]), "cam1", 2) == new
    assert g.stats()["corrections"] == 2
    with pytest.raises(NotFoundError):
        g.merge(a, 999)
    with pytest.raises(NotFoundError):
        g.split("cam9", 1)


def test_unknown_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown association options"):
        AssociationOptions.from_dict(AssociationOptions(), {"bogus": 1})
