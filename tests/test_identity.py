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


def test_a_track_that_keeps_contradicting_its_person_is_taken_off_it() -> None:
    """A tracker that swapped people: cam2's track walks away from where cam1 and cam3 still see the person."""
    g = IdentityGallery(AssociationOptions(detach_distance_m=2.5, detach_after_steps=3))
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam3", 1, 0, A, (0.1, 0)), ob("cam2", 1, 0, A, (0.2, 0))])
    person = gid(r, "cam2", 1)
    assert person == gid(r, "cam1", 1) == gid(r, "cam3", 1)
    for k in range(1, 3):  # two steps of disagreement: hysteresis keeps the decision
        r = g.step([ob("cam1", 1, k / 7, A, (0, 0)), ob("cam3", 1, k / 7, A, (0, 0)), ob("cam2", 1, k / 7, A, (4, 0))])
        assert gid(r, "cam2", 1) == person
    r = g.step([ob("cam1", 1, 3 / 7, A, (0, 0)), ob("cam3", 1, 3 / 7, A, (0, 0)), ob("cam2", 1, 3 / 7, A, (4, 0))])
    assert gid(r, "cam2", 1) != person and gid(r, "cam1", 1) == person and g.detached == 1
    # One step of disagreement then agreement again: nothing happens.
    g2 = IdentityGallery(AssociationOptions(detach_after_steps=2))
    g2.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam2", 1, 0, A, (0, 0)), ob("cam3", 1, 0, A, (0, 0))])
    g2.step([ob("cam1", 1, 0.1, A, (0, 0)), ob("cam2", 1, 0.1, A, (5, 0)), ob("cam3", 1, 0.1, A, (0, 0))])
    r = g2.step([ob("cam1", 1, 0.2, A, (0, 0)), ob("cam2", 1, 0.2, A, (0, 0)), ob("cam3", 1, 0.2, A, (0, 0))])
    assert len(set(g for _, _, g in r)) == 1 and g2.detached == 0


def test_a_sighting_that_started_a_person_of_its_own_joins_its_person_later() -> None:
    """cam2's track starts 3 m off (a box cut by the image edge), then stands where cam1 sees the person: after
    ``attach_after_steps`` steps together the two persons are one (the older id stays)."""
    g = IdentityGallery(AssociationOptions(attach_distance_m=1.0, attach_after_steps=5))
    r = g.step([ob("cam1", 1, 0, A, (0, 0)), ob("cam2", 4, 0, B, (3, 0))])
    older, younger = gid(r, "cam1", 1), gid(r, "cam2", 4)
    assert older != younger
    for k in range(1, 5):
        r = g.step([ob("cam1", 1, k / 7, A, (0, 0)), ob("cam2", 4, k / 7, B, (0.3, 0))])
        assert gid(r, "cam2", 4) == younger
    r = g.step([ob("cam1", 1, 5 / 7, A, (0, 0)), ob("cam2", 4, 5 / 7, B, (0.3, 0))])
    assert gid(r, "cam2", 4) == older and younger not in g.persons and g.attached == 1
    # Two people one camera sees side by side are never joined, however long they stand together.
    g2 = IdentityGallery(AssociationOptions(attach_distance_m=1.0, attach_after_steps=2))
    for k in range(10):
        r = g2.step(
            [ob("cam1", 1, k / 7, A, (0, 0)), ob("cam1", 2, k / 7, B, (0.5, 0)), ob("cam2", 3, k / 7, B, (0.5, 0))]
        )
    assert gid(r, "cam1", 1) != gid(r, "cam1", 2) and g2.attached == 0


def test_a_person_lost_for_a_moment_is_expected_where_its_walk_leads() -> None:
    """Floor only (no appearance): after a 1.5 s gap a new track joins the person where its velocity puts it, not
    at the same distance behind it."""
    opts = AssociationOptions(floor_weight=1.0, recent_s=2.0)
    for ahead, same in ((True, True), (False, False)):
        g = IdentityGallery(opts)
        for k in range(8):  # walking +x at 1.4 m/s
            r = g.step([ob("cam1", 1, k / 7, None, (1.4 * k / 7, 0))])
        person, last_t = gid(r, "cam1", 1), 7 / 7
        t = last_t + 1.5
        x = 1.4 * t if ahead else 1.4 * last_t - 1.4 * 1.5
        assert (gid(g.step([ob("cam2", 5, t, None, (x, 0))]), "cam2", 5) == person) is same


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


def test_gallery_state_round_trips_and_decides_the_same() -> None:
    """What reid_svc stores for another replica: restored, it gives the same answers as the original."""
    g = IdentityGallery(AssociationOptions(first_global_id=5))
    g.step([ob("c1", 1, 0.0, A, (0, 0)), ob("c2", 7, 0.0, A, (0.2, 0)), ob("c1", 2, 0.0, B, (6, 6))])
    g.step([ob("c1", 1, 0.5, A, (0.3, 0)), ob("c1", 2, 0.5, B, (6.2, 6))])
    meta, embeddings = g.to_state()
    copy = IdentityGallery.from_state(meta, embeddings, g.options)
    assert copy.stats() == g.stats() and copy.assignment == g.assignment and copy._next_id == g._next_id
    later = [ob("c3", 4, 20.0, B, None), ob("c1", 1, 1.0, A, (0.5, 0))]
    assert copy.step(list(later)) == g.step(list(later))
    assert np.array_equal(g.to_state()[1], copy.to_state()[1]) and g.to_state()[0] == copy.to_state()[0]


def test_associate_refuses_bad_input(channel_to) -> None:  # type: ignore[no-untyped-def]
    import uuid

    import grpc

    from spoton.domain import array_to_tensor
    from spoton.v1 import reid_pb2, reid_pb2_grpc

    stub = reid_pb2_grpc.ReidServiceStub(channel_to("reid"))

    def run(*steps: tuple[int, int]) -> grpc.RpcError | None:
        """Steps of (timestamp s, embedding length); the error the stream ends with, if any."""
        start = reid_pb2.AssociateRequest(start=reid_pb2.AssociateStart(session_id=uuid.uuid4().hex))
        msgs = [start]
        for i, (t, n) in enumerate(steps, start=1):
            emb = array_to_tensor(unit(RNG.normal(size=n)).astype(np.float32)[None])
            obs = reid_pb2.Observation(camera_id="c", track_id=i, timestamp_ns=t * S, embedding=emb)
            msgs.append(
                reid_pb2.AssociateRequest(step=reid_pb2.AssociateStep(step=i, timestamp_ns=t * S, observations=[obs]))
            )
        try:
            list(stub.Associate(iter(msgs), timeout=10))
        except grpc.RpcError as exc:
            return exc
        return None

    assert run((1, 8), (2, 8)) is None
    wrong_size = run((1, 8), (2, 16))
    assert wrong_size.code() == grpc.StatusCode.INVALID_ARGUMENT and "16 values" in wrong_size.details()
    backwards = run((5, 8), (3, 8))
    assert backwards.code() == grpc.StatusCode.INVALID_ARGUMENT and "older" in backwards.details()
    with pytest.raises(grpc.RpcError) as unknown:
        stub.GetGalleryStats(reid_pb2.GetGalleryStatsRequest(session_id="no-such-session"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_gallery_stays_bounded_over_a_long_session() -> None:
    """Persons unseen for retire_after_s are forgotten with their tracks (a months-long session stays small)."""
    g = IdentityGallery(AssociationOptions(retire_after_s=10.0))
    for i in range(600):  # a new passer-by every second, each seen for one instant
        g.step([ob("c1", i + 1, float(i), unit(RNG.normal(size=64)), (float(i % 7), 0.0))])
    assert len(g.persons) <= 12 and len(g.assignment) <= 12
    assert g.retired + len(g.persons) == g._next_id - 1 and g.retired > 500  # every id ever given, none reused


def test_thumbnail_keeps_the_largest_sharpest_least_occluded_crop() -> None:
    import cv2

    from reid_svc.identity import thumbnail_score

    rng = np.random.default_rng(3)
    sharp = rng.integers(0, 255, (160, 64, 3), dtype=np.uint8)
    jpeg = lambda im: cv2.imencode(".jpg", im)[1].tobytes()  # noqa: E731
    big_sharp, blurred = jpeg(sharp), jpeg(cv2.GaussianBlur(sharp, (15, 15), 0))
    small = jpeg(cv2.resize(sharp, (32, 80)))
    assert thumbnail_score(big_sharp, 1.0) > thumbnail_score(blurred, 1.0)
    assert thumbnail_score(big_sharp, 1.0) > thumbnail_score(small, 1.0)
    assert thumbnail_score(big_sharp, 1.0) > thumbnail_score(big_sharp, 0.3)
    g = IdentityGallery()
    g.step([ob("c1", 1, 0.0, A, (0, 0))])
    assert g.offer_thumbnail(1, blurred, thumbnail_score(blurred, 1.0), 1, "c1")
    assert g.offer_thumbnail(1, big_sharp, thumbnail_score(big_sharp, 0.9), 2, "c1")
    assert not g.offer_thumbnail(1, small, thumbnail_score(small, 1.0), 3, "c2")
    assert g.persons[1].thumbnail.jpeg == big_sharp
    restored = IdentityGallery.from_state(*g.to_state(), g.options)
    assert restored.persons[1].thumbnail.jpeg == big_sharp  # stored with the gallery
    with pytest.raises(ValueError):
        thumbnail_score(b"not a jpeg", 1.0)
