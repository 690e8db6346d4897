"""The identity-embedding budget (gateway/identity_embed.py): which tracks are embedded when, the per-step cap,
occlusion and sharpness gates, and the frame helpers behind them (spoton/frames.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gateway.identity_embed import IdentityBudget, IdentityEmbedder
from spoton.domain import Detections, Tracks
from spoton.frames import covered_shares, sharpness

S = 1_000_000_000  # ns per second
T0 = 1_700_000_000 * S


def frame_of(boxes: list, ids: list, det_index: list | None = None) -> tuple[Tracks, Detections]:
    n = len(boxes)
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    dets = Detections(xyxy, np.full(n, 0.9), np.zeros(n))
    di = np.arange(n) if det_index is None else np.array(det_index)
    return Tracks(xyxy, ids, np.full(n, 0.8), np.zeros(n), det_index=di), dets


def run(ie: IdentityEmbedder, ts: int, tracks: Tracks, dets: Detections, image=None) -> list[int]:  # type: ignore[no-untyped-def]
    """Choose, cap, and remember a dummy embedding for each choice; the chosen track ids."""
    chosen = ie.cap(ie.choose("c", ts, tracks, dets, lambda: image))
    for c in chosen:
        ie.remember(c, np.ones(4, np.float32), ts)
    return sorted(c.track_id for c in chosen)


APART = [[0, 0, 40, 100], [100, 0, 140, 100]]


def test_birth_then_every_few_seconds_when_clean() -> None:
    ie = IdentityEmbedder(IdentityBudget(every_s=2.0))
    tracks, dets = frame_of(APART, [1, 2])
    assert run(ie, T0, tracks, dets) == [1, 2]  # births
    for k in range(1, 14):  # 7 fps: the next 13 steps are within 2 s
        assert run(ie, T0 + k * S // 7, tracks, dets) == []
    assert run(ie, T0 + 2 * S, tracks, dets) == [1, 2]
    assert ie.embedded == 4 and ie.candidates == 2 * 15
    every = IdentityEmbedder(IdentityBudget(mode="every"))
    assert all(run(every, T0 + k * S // 7, tracks, dets) == [1, 2] for k in range(15))


def test_occluded_tracks_wait_and_a_birth_behind_someone_is_redone_once_clear() -> None:
    ie = IdentityEmbedder(IdentityBudget(every_s=2.0, max_covered=0.1))
    overlapping = [[0, 0, 40, 100], [20, 0, 60, 100], [200, 0, 240, 100]]
    tracks, dets = frame_of(overlapping, [1, 2, 3])
    assert run(ie, T0, tracks, dets) == [1, 2, 3]  # births are embedded whatever the occlusion
    assert [ie.tracks[("c", t)].clean for t in (1, 2, 3)] == [False, False, True]
    assert run(ie, T0 + 3 * S, tracks, dets) == [3]  # 1 and 2 still cover each other: not due
    apart, dets2 = frame_of([[0, 0, 40, 100], [100, 0, 140, 100], [200, 0, 240, 100]], [1, 2, 3])
    assert run(ie, T0 + 3 * S + S // 7, apart, dets2) == [1, 2]  # clear now: their poor births are redone
    assert run(ie, T0 + 3 * S + 2 * S // 7, apart, dets2) == []
    # An untracked detection covers too (someone the tracker has not confirmed yet).
    tracks4, dets4 = frame_of([[0, 0, 40, 100], [10, 0, 50, 100]], [1, 99], det_index=[0, -1])
    dets4 = Detections(np.array([[0, 0, 40, 100], [10, 0, 50, 100]], np.float32), np.full(2, 0.9), np.zeros(2))
    assert run(ie, T0 + 10 * S, tracks4, dets4) == []


def test_predicted_tracks_are_never_embedded_and_the_cap_puts_births_first() -> None:
    ie = IdentityEmbedder(IdentityBudget(every_s=1.0, max_per_step=2))
    boxes = [[k * 100, 0, k * 100 + 40, 100] for k in range(4)]
    tracks, dets = frame_of(boxes, [1, 2, 3, 4], det_index=[0, 1, -1, 2])
    assert run(ie, T0, tracks, dets) == [1, 2]  # track 3 has no detection; of the 3 births the cap keeps 2
    assert run(ie, T0 + S // 7, tracks, dets) == [4]  # the birth left out is first next step
    assert run(ie, T0 + 5 * S, tracks, dets) == [1, 2]  # then the longest waiting (4 waited less)


def test_blurred_crops_are_not_re_embedded() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 400, 3), dtype=np.uint8)
    image[:, 200:] = cv2.GaussianBlur(image[:, 200:], (0, 0), 6)
    ie = IdentityEmbedder(IdentityBudget(every_s=1.0, min_sharpness=100.0))
    tracks, dets = frame_of([[0, 0, 40, 100], [250, 0, 290, 100]], [1, 2])
    assert run(ie, T0, tracks, dets, image) == [1, 2]
    assert [ie.tracks[("c", t)].clean for t in (1, 2)] == [True, False]
    assert run(ie, T0 + 2 * S, tracks, dets, image) == [1]


def test_frame_helpers() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], float)
    assert np.allclose(covered_shares(boxes), [0.5, 0.5, 0.0])
    assert np.allclose(covered_shares(boxes[2:], boxes[:1] + 95), [0.25])
    rng = np.random.default_rng(1)
    crisp = rng.integers(0, 255, (200, 80, 3), dtype=np.uint8)
    assert sharpness(crisp) > 10 * sharpness(cv2.GaussianBlur(crisp, (0, 0), 4))
    with pytest.raises(ValueError, match="mode"):
        IdentityBudget(mode="sometimes")
