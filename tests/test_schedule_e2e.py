"""Detection scheduling through the real stack: with ``detect_every`` 2 the detector sees half the camera frames,
and every frame still has its tracks, under the same IDs, with floor points and global IDs; tracking_svc's
predict-only frames over gRPC."""

from __future__ import annotations

import asyncio
import re

import grpc
import numpy as np
import pytest

from spoton.evaluation import ground_truth_from_mot, score_run
from spoton.v1 import tracking_pb2, tracking_pb2_grpc
from tests.conftest import gwapi
from tests.test_e2e import record
from tests.test_tracking import _frame, _start, walker

STEPS = 16
CAMERAS = ("cam1", "cam2", "cam3", "cam4")


def detect_calls(stack) -> float:  # type: ignore[no-untyped-def]
    """DetectStream requests the detection service has computed so far (one per step that detected any camera)."""
    text = gwapi.get(f"http://127.0.0.1:{stack.metrics_ports['detection']}/metrics", timeout=5).text
    found = re.search(r'spoton_compute_seconds_count\{method="DetectStream"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_detect_every_2_keeps_every_frame_tracked(stack, demo_dir) -> None:  # type: ignore[no-untyped-def]
    before = detect_calls(stack)
    options = {"max_steps": STEPS, "detection_schedule": "fixed", "detect_every": 2, "schedule_prediction": "kalman"}
    body = {"video_set": "demo", "options": options}
    r = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", timeout=30, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"))
    summary = gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json()
    assert summary["status"] == "finished" and summary["steps"] == STEPS
    # Half the camera frames were detected, counted by the gateway and by the detection service itself: the
    # cameras are in phase, so odd steps send one DetectStream batch and even steps none.
    assert summary["detection"] == {
        "mode": "fixed",
        "detect_every": 2,
        "camera_frames": STEPS * len(CAMERAS),
        "detected_frames": STEPS * len(CAMERAS) // 2,
        "detected_share": 0.5,
    }
    assert detect_calls(stack) - before == STEPS // 2
    steps = [m for m in messages if m["type"] == "step"]
    assert [m["step"] for m in steps] == list(range(1, STEPS + 1))
    for cam in CAMERAS:
        per_step = [m["cameras"][cam]["tracks"] for m in steps]
        assert all(per_step[4:]), f"{cam}: a step without tracks"
        for k in range(1, STEPS, 2):  # steps 2, 4, ...: predicted from the tracker's Kalman state
            detected, predicted = per_step[k - 1], per_step[k]
            assert {t["track_id"] for t in predicted} == {t["track_id"] for t in detected}, (cam, k + 1)
            if k >= 5:  # once the filters have velocities, boxes are predicted on, not held
                held = {t["track_id"]: t["bbox"] for t in detected}
                assert any(t["bbox"] != held[t["track_id"]] for t in predicted), (cam, k + 1)
        tracks = [t for ts in per_step for t in ts]
        assert sum(t["floor"] is not None for t in tracks) / len(tracks) > 0.95, cam
        assert sum(t["global_id"] is not None for t in tracks) / len(tracks) > 0.95, cam
    gt = ground_truth_from_mot({c: demo_dir / "gt" / f"{c}.txt" for c in CAMERAS})
    for cam, s in score_run(gt, messages)["cameras"].items():
        assert s["recall"] > 0.7, cam  # every frame scored, the predicted ones too


def test_predict_only_frames_over_grpc(channel_to) -> None:  # type: ignore[no-untyped-def]
    """A predict_only frame keeps the stream's track IDs (det_index -1) on BoT-SORT without embeddings; one that
    carries detections, or one on a tracker that cannot predict, is INVALID_ARGUMENT."""
    stub = tracking_pb2_grpc.TrackingServiceStub(channel_to("tracking"))
    emb = np.eye(2, 8, dtype=np.float32)
    detected = [_frame(f, emb=emb) for f in range(1, 6)]
    predicted = tracking_pb2.TrackRequest(
        frame=tracking_pb2.TrackFrame(frame_index=6, width=640, height=480, predict_only=True)
    )
    replies = list(stub.Track(iter([_start("t-predict", "botsort"), *detected, predicted]), timeout=30))
    ids = {t.track_id for t in replies[-2].tracks}
    assert len(ids) == 2 and {t.track_id for t in replies[-1].tracks} == ids
    assert all(t.det_index == -1 for t in replies[-1].tracks)
    bad = tracking_pb2.TrackRequest()
    bad.CopyFrom(predicted)
    bad.frame.detections.extend(walker(6).to_proto())
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Track(iter([_start("t-predict-bad", "botsort"), bad]), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Track(iter([_start("t-predict-ocsort", "ocsort"), _frame(1), predicted]), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cannot predict" in err.value.details()


def test_births_confirmed_next_over_grpc_shows_a_track_on_its_first_frame(channel_to) -> None:  # type: ignore[no-untyped-def]
    """``TrackFrame.births_confirmed_next`` on frame 2: the walkers born on frame 2 of a stream that started
    empty come back on that frame; without it they come back from frame 3."""
    stub = tracking_pb2_grpc.TrackingServiceStub(channel_to("tracking"))
    empty = tracking_pb2.TrackRequest(frame=tracking_pb2.TrackFrame(frame_index=1, width=640, height=480))

    def replies(session: str, flag: bool) -> list[int]:
        frames = [_frame(f) for f in (2, 3)]
        frames[0].frame.births_confirmed_next = flag
        return [len(r.tracks) for r in stub.Track(iter([_start(session), empty, *frames]), timeout=30)]

    assert replies("t-births", True) == [0, 2, 2]
    assert replies("t-births-plain", False) == [0, 0, 2]


def test_carried_detections_show_new_tracks_on_skipped_frames(stack, demo_dir) -> None:  # type: ignore[no-untyped-def]
    """``schedule_prediction: detections``: a skipped frame is tracked on the previous detections moved by optical
    flow, and since that frame's match of a new track only repeats the detected frame's, a track born on a
    detected frame is shown there at once (``births_confirmed_next``): new track IDs appear on detected steps,
    not on the skipped step after (where the carried match used to confirm them). With Kalman prediction a
    skipped frame shows exactly the tracks of the detected frame before it (test above)."""
    options = {"max_steps": STEPS, "detection_schedule": "fixed", "detect_every": 2}
    options["schedule_prediction"] = "detections"
    r = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", timeout=30, json={"video_set": "demo", "options": options})
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"))
    summary = gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json()
    assert summary["status"] == "finished" and summary["detection"]["detected_share"] == 0.5
    steps = [m for m in messages if m["type"] == "step"]
    born_on_skipped = born_on_detected = 0
    for cam in CAMERAS:
        per_step = [{t["track_id"] for t in m["cameras"][cam]["tracks"]} for m in steps]
        assert all(per_step[4:]), f"{cam}: a step without tracks"
        born_on_skipped += sum(len(per_step[k] - per_step[k - 1]) for k in range(1, STEPS, 2))
        born_on_detected += sum(len(per_step[k] - per_step[k - 1]) for k in range(2, STEPS, 2))
    assert born_on_detected > born_on_skipped, (born_on_detected, born_on_skipped)
    gt = ground_truth_from_mot({c: demo_dir / "gt" / f"{c}.txt" for c in CAMERAS})
    for cam, s in score_run(gt, messages)["cameras"].items():
        assert s["recall"] > 0.7, cam
