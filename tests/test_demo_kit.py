"""Demo video set and scoring kit self-tests (short window of frames)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from spoton.demo.data import PETS_VIEW1_HOMOGRAPHY, fit_view_homography, gt_path, load_mot
from spoton.demo.generate import CAMERAS, camera_homography, foot_floor_error, generate
from spoton.evaluation import ground_truth_from_mot, score_run
from spoton.videoset import load_video_set

needs_gt = pytest.mark.skipif(gt_path() is None, reason="PETS ground truth not found under SPOTON_DATA_DIR")


def gt_messages(gt, id_of=lambda cam, i: int(i)):  # type: ignore[no-untyped-def]
    frames = sorted(set().union(*[set(v) for v in gt.values()]))
    msgs = []
    for f in frames:
        cams = {}
        for cam, by_frame in gt.items():
            fb = by_frame.get(f)
            tracks = (
                []
                if fb is None
                else [
                    {
                        "track_id": int(i),
                        "global_id": id_of(cam, i),
                        "bbox": b.tolist(),
                        "confidence": 1.0,
                        "floor": p.tolist(),
                    }
                    for i, b, p in zip(fb.ids, fb.xyxy, fb.floor, strict=True)
                ]
            )
            cams[cam] = {"frame_index": f, "tracks": tracks}
        msgs.append({"type": "step", "step": f, "cameras": cams})
    return msgs


def test_video_set_yaml(demo_dir: Path) -> None:
    vs = load_video_set(demo_dir / "demo.yaml")
    assert [c.id for c in vs.cameras] == [c.id for c in CAMERAS]
    assert all(c.fps == 7 and c.homography for c in vs.cameras)
    assert vs.zones and vs.lines
    for cam in vs.cameras:
        assert Path(vs.source_uri(cam)).stat().st_size > 10_000


def test_generation_is_deterministic(tmp_path: Path, demo_dir: Path) -> None:
    generate(tmp_path, frames=5)
    for cam in CAMERAS:
        import cv2

        a, b = cv2.VideoCapture(str(tmp_path / f"{cam.id}.mp4")), cv2.VideoCapture(str(demo_dir / f"{cam.id}.mp4"))
        for _ in range(5):
            fa, fb = a.read()[1], b.read()[1]
            assert hashlib.sha1(fa.tobytes()).digest() == hashlib.sha1(fb.tobytes()).digest()
    assert (tmp_path / "demo.yaml").read_text() == (demo_dir / "demo.yaml").read_text()


@needs_gt
def test_committed_view_calibration_matches_ground_truth() -> None:
    h, err = fit_view_homography(load_mot(gt_path()))
    assert np.median(err) < 0.03  # DESIGN §4: 2.5 cm
    np.testing.assert_allclose(h, PETS_VIEW1_HOMOGRAPHY, rtol=1e-4, atol=1e-6)


@needs_gt
def test_warped_ground_truth_floor_agrees_with_pets(demo_dir: Path) -> None:
    for cam in CAMERAS:
        rows = load_mot(demo_dir / "gt" / f"{cam.id}.txt")
        rows = rows[rows[:, 6] == 1]
        assert len(rows) > 0
        err = foot_floor_error(rows, camera_homography(PETS_VIEW1_HOMOGRAPHY, cam))
        # The warped box's bottom centre is not exactly the warped foot point: a few cm, measured 3-9 cm.
        assert np.median(err) < 0.10, cam.id


@needs_gt
def test_perfect_tracker_scores_one(demo_dir: Path) -> None:
    gt = ground_truth_from_mot({c.id: demo_dir / "gt" / f"{c.id}.txt" for c in CAMERAS})
    result = score_run(gt, gt_messages(gt))
    for cam, s in result["cameras"].items():
        assert s["mota"] == pytest.approx(1.0) and s["idf1"] == pytest.approx(1.0), cam
        assert s["floor_median_m"] == pytest.approx(0.0)
    m = result["multi_camera"]
    assert m["idf1"] == pytest.approx(1.0) and m["same_person_precision"] == 1.0 and m["same_person_recall"] == 1.0


@needs_gt
def test_per_camera_ids_as_global_ids_score_lower(demo_dir: Path) -> None:
    gt = ground_truth_from_mot({c.id: demo_dir / "gt" / f"{c.id}.txt" for c in CAMERAS})
    cams = sorted(gt)
    result = score_run(gt, gt_messages(gt, id_of=lambda cam, i: 1000 * (cams.index(cam) + 1) + int(i)))
    assert all(s["idf1"] == pytest.approx(1.0) for s in result["cameras"].values())
    m = result["multi_camera"]
    assert m["idf1"] < 0.6 and m["same_person_recall"] == 0.0
