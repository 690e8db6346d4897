"""Detection scheduling per camera (gateway/schedule.py): the decisions, the session options that choose them, the
requests of a skipped frame, and the tracker's predict-only frames (boxmot's Kalman filters, no gRPC here)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from gateway.config import GatewaySettings
from gateway.options import SessionConfig
from gateway.requests import detect_request, embed_request, merge_detect, merge_embed, track_request
from gateway.schedule import (
    CROWD,
    YOUNG_AGE,
    DetectionCarrier,
    DetectionSchedule,
    FlowPredictor,
    SchedulePolicy,
    changed_share,
    flow_grey,
    flow_shift,
    keep_cut_sides,
    motion_thumb,
    tracks_need_detection,
)
from gateway.work import CameraInput, StepWork
from spoton.domain import Detections, Tracks, array_to_tensor, boxes_to_proto
from spoton.v1 import common_pb2, detection_pb2, reid_pb2
from tracking_svc.trackers import CameraTracker


def decisions(schedule: DetectionSchedule, cam: str, n: int, thumbs: list | None = None) -> list[bool]:
    return [schedule.decide(cam, thumbs[i] if thumbs else None) for i in range(n)]


def mature(n: int = 2, conf: float = 0.6) -> Tracks:
    """``n`` old, confidently matched tracks."""
    xyxy = np.array([[10 + 60 * i, 10, 50 + 60 * i, 120] for i in range(n)], np.float32)
    return Tracks(
        xyxy=xyxy,
        track_id=np.arange(n),
        confidence=np.full(n, conf),
        class_id=np.zeros(n),
        age=np.full(n, YOUNG_AGE + 5),
        hits=np.full(n, YOUNG_AGE + 5),
        det_index=np.arange(n),
    )


def test_fixed_every_frame_and_every_kth_per_camera() -> None:
    every = DetectionSchedule(SchedulePolicy())
    assert decisions(every, "a", 5) == [True] * 5
    two = DetectionSchedule(SchedulePolicy("fixed", 2))
    assert decisions(two, "a", 6) == [True, False] * 3
    assert decisions(two, "b", 3) == [True, False, True]  # each camera counts its own frames
    three = DetectionSchedule(SchedulePolicy("fixed", 3))
    assert decisions(three, "a", 7) == [True, False, False, True, False, False, True]
    assert two.summary() == {
        "mode": "fixed",
        "detect_every": 2,
        "camera_frames": 9,
        "detected_frames": 5,
        "detected_share": round(5 / 9, 3),
    }


def test_motion_skips_still_frames_up_to_the_longest_run_and_detects_on_change() -> None:
    still = np.full((120, 160), 100, np.uint8)
    moved = still.copy()
    moved[40:80, 60:100] = 200  # 1600 of 19200 pixels changed
    assert changed_share(still, still) == 0.0
    assert changed_share(still, moved) == pytest.approx(1600 / 19200)
    s = DetectionSchedule(SchedulePolicy("motion", 4, motion_threshold=0.05))
    assert decisions(s, "a", 9, [still] * 9) == [True, False, False, False, True, False, False, False, True]
    # a change above the threshold is detected at once, and becomes the new reference frame
    assert decisions(s, "a", 3, [still, moved, moved]) == [False, True, False]
    small = DetectionSchedule(SchedulePolicy("motion", 4, motion_threshold=0.1))
    assert decisions(small, "a", 3, [still, moved, still]) == [True, False, False]  # 8 % < 10 %
    # without a thumbnail a frame is never skipped on motion grounds
    assert decisions(DetectionSchedule(SchedulePolicy("motion", 4)), "a", 3) == [True] * 3


def test_motion_thumb_is_small_grey() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 320:] = 255
    thumb = motion_thumb(frame)
    assert thumb.shape == (120, 160) and thumb.dtype == np.uint8
    assert thumb[:, :80].max() == 0 and thumb[:, 80:].min() == 255


def test_tracks_need_detection_when_young_crowded_or_uncertain() -> None:
    assert not tracks_need_detection(Tracks.empty())
    assert not tracks_need_detection(mature())
    young = mature()
    young.age[1] = YOUNG_AGE - 1
    assert tracks_need_detection(young)
    assert tracks_need_detection(mature(CROWD))
    assert tracks_need_detection(mature(conf=0.2))
    unmatched = mature()
    unmatched.det_index[0] = -1
    assert tracks_need_detection(unmatched)


def test_adaptive_detects_every_frame_while_busy_else_every_kth() -> None:
    s = DetectionSchedule(SchedulePolicy("adaptive", 3))
    assert decisions(s, "a", 3) == [True] * 3  # a camera starts busy
    s.observe("a", mature())
    assert decisions(s, "a", 4) == [False, False, True, False]
    young = mature()
    young.age[:] = 1
    s.observe("a", young)
    assert decisions(s, "a", 2) == [True, True]
    s.observe("b", mature())  # cameras are independent
    assert decisions(s, "b", 3) == [True, False, False]


def test_policy_validation_and_session_options_over_settings() -> None:
    with pytest.raises(ValueError, match="detection_schedule"):
        SchedulePolicy("sometimes")
    with pytest.raises(ValueError, match="detect_every"):
        SchedulePolicy("fixed", 0)
    with pytest.raises(ValueError, match="motion_threshold"):
        SchedulePolicy("motion", 2, 1.5)
    with pytest.raises(ValueError, match="schedule_prediction"):
        SchedulePolicy("fixed", 2, prediction="guess")
    assert SchedulePolicy("fixed", 2, prediction="flow").uses_flow
    assert not SchedulePolicy("fixed", 1, prediction="flow").uses_flow  # nothing to predict
    carry = SchedulePolicy("fixed", 2, prediction="detections")
    assert carry.uses_flow and carry.carries_detections
    assert not SchedulePolicy("fixed", 2, prediction="flow").carries_detections
    assert not SchedulePolicy("fixed", 1, prediction="detections").carries_detections
    settings = GatewaySettings(detection_schedule="motion", detect_every=3, motion_threshold=0.01)
    assert SessionConfig.resolve({}, settings).schedule == SchedulePolicy("motion", 3, 0.01, "detections")
    cfg = SessionConfig.resolve(
        {"detection_schedule": "fixed", "detect_every": 2, "motion_threshold": 0, "schedule_prediction": "flow"},
        settings,
    )
    assert cfg.schedule == SchedulePolicy("fixed", 2, 0.0, "flow")
    # The default: every second frame detected, the previous detections carried into the other.
    assert SessionConfig.resolve({}, GatewaySettings()).schedule == SchedulePolicy("fixed", 2, 0.002, "detections")


def camera(cam_id: str, detected: bool) -> CameraInput:
    frame = common_pb2.Frame(camera_id=cam_id, frame_index=7, timestamp_ns=5, width=640, height=480)
    return CameraInput(cam_id, frame, detected=detected)


def test_skipped_cameras_are_left_out_of_detect_and_embed_and_predicted_by_the_tracker() -> None:
    work = StepWork(3, 5, [camera("a", True), camera("b", False)])
    req = detect_request(work)
    assert [f.camera_id for f in req.batch.frames] == ["a"]
    box = common_pb2.Detection(bbox=boxes_to_proto(np.array([[1, 2, 30, 60]]))[0], confidence=0.5)
    reply = detection_pb2.DetectStreamResponse(
        batch=detection_pb2.DetectionBatch(frames=[detection_pb2.FrameDetections(detections=[box])])
    )
    merge_detect(work, reply)
    a, b = work.cameras
    assert len(a.detections) == 1 and len(b.detections) == 0 and b.embeddings.shape == (0, 0)
    assert [i.frame.camera_id for i in embed_request(work).items] == ["a"]
    merge_embed(work, reid_pb2.EmbedStreamResponse(embeddings=[array_to_tensor(np.ones((1, 4), np.float32))]))
    assert a.embeddings.shape == (1, 4)
    ta, tb = track_request(a).frame, track_request(b).frame
    assert not ta.predict_only and len(ta.detections) == 1 and ta.embeddings.shape == [1, 4]
    assert tb.predict_only and len(tb.detections) == 0 and not tb.embeddings.data
    assert (tb.frame_index, tb.width, tb.height) == (7, 640, 480)
    skipped = StepWork(4, 6, [camera("a", False), camera("b", False)])
    assert detect_request(skipped) is None and embed_request(skipped) is None
    merge_detect(skipped, None)
    merge_embed(skipped, None)
    assert all(len(c.detections) == 0 for c in skipped.cameras)


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_predict_only_frames_keep_ids_and_follow_the_motion(name: str) -> None:
    tracker = CameraTracker.create(name)
    boxes = np.array([[100, 100, 150, 250], [300, 100, 350, 250]], np.float32)
    step = np.array([4, 0, 4, 0], np.float32)

    def update(k: int):  # type: ignore[no-untyped-def]
        dets = Detections(boxes + k * step, np.array([0.6, 0.7]), np.zeros(2))
        emb = np.eye(2, 8, dtype=np.float32) if tracker.needs_embeddings else None
        return tracker.update(dets, emb, (640, 480), k + 1)

    for k in range(6):
        out = update(k)
    ids = sorted(out.track_id.tolist())
    assert len(ids) == 2
    last_x = out.xyxy[np.argsort(out.track_id), 0]
    for k in (6, 7):
        pred = tracker.predict((640, 480), k + 1)
        assert sorted(pred.track_id.tolist()) == ids
        assert (pred.det_index == -1).all()
        x = pred.xyxy[np.argsort(pred.track_id), 0]
        assert (x > last_x).all()  # the filters carry the people on to the right
        last_x = x
    after = update(8)  # the next detected frame matches the predicted tracks: same ids, both matched
    assert sorted(after.track_id.tolist()) == ids and (after.det_index >= 0).all()


def test_predict_only_on_a_tracker_without_that_ability_is_refused() -> None:
    tracker = CameraTracker.create("ocsort")
    assert not tracker.can_predict
    with pytest.raises(ValueError, match="cannot predict"):
        tracker.predict((640, 480), 1)


def textured(shift: tuple[float, float] = (0, 0)) -> np.ndarray:
    """A 640x480 random texture moved by ``shift`` pixels."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((480, 640, 3)) * 255).astype(np.uint8), (5, 5), 0)
    return cv2.warpAffine(img, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (640, 480))


def test_flow_shift_moves_boxes_with_the_image() -> None:
    boxes = np.array([[100, 100, 160, 260], [300, 50, 360, 200]], np.float32)
    moved, valid = flow_shift(flow_grey(textured()), flow_grey(textured((6, -4))), boxes)
    assert valid.all()
    np.testing.assert_allclose(moved, boxes + np.float32([6, -4, 6, -4]), atol=0.5)
    edge = np.array([[0, 0, 40, 100]], np.float32)  # the corner the shift blackens: not followed, not moved
    moved, valid = flow_shift(flow_grey(textured()), flow_grey(textured((20, 20))), edge)
    assert not valid.any() and (moved == edge).all()
    flat = np.zeros((240, 320), np.uint8)  # nothing to follow: boxes stay, marked not followed
    moved, valid = flow_shift(flat, flat, boxes)
    assert not valid.any() and (moved == boxes).all()


def test_flow_predictor_moves_known_tracks_on_skipped_frames_only() -> None:
    flow = FlowPredictor()
    first = dataclasses.replace(mature(), xyxy=mature().xyxy + np.float32([200, 150, 200, 150]))
    assert flow.step("a", flow_grey(textured()), first, True, (640, 480)) is first
    kalman = dataclasses.replace(first, xyxy=first.xyxy + 1, track_id=np.array([0, 7]), det_index=np.array([-1, -1]))
    out = flow.step("a", flow_grey(textured((5, 0))), kalman, False, (640, 480))
    np.testing.assert_allclose(
        out.xyxy[0], first.xyxy[0] + np.float32([5, 0, 5, 0]), atol=0.5
    )  # track 0: moved by flow
    np.testing.assert_allclose(out.xyxy[1], kalman.xyxy[1])  # track 7 was not there before: the Kalman box
    detected = flow.step("a", flow_grey(textured((9, 0))), kalman, True, (640, 480))
    assert detected is kalman  # a detected frame's boxes are the tracker's


def test_carrier_moves_every_previous_detection_by_flow_with_its_score_and_embedding() -> None:
    carrier = DetectionCarrier()
    boxes = np.array([[200, 150, 260, 310], [400, 100, 450, 230], [600, 10, 640, 120]], np.float32)
    dets = Detections(boxes, np.array([0.6, 0.3, 0.5]), np.zeros(3))
    emb = np.eye(3, 8, dtype=np.float32)
    wh = (640, 480)
    assert carrier.step("a", flow_grey(textured()), Detections.empty(), emb[:0], False, wh) is None  # nothing yet
    got = carrier.step("a", flow_grey(textured()), dets, emb, True, wh)
    assert got[0] is dets and got[1] is emb  # a detected frame's own detections
    carried, carried_emb = carrier.step("a", flow_grey(textured((8, 3))), Detections.empty(), emb[:0], False, wh)
    np.testing.assert_allclose(carried.xyxy[:2], boxes[:2] + np.float32([8, 3, 8, 3]), atol=0.5)
    np.testing.assert_allclose(carried.xyxy[2], [608, 13, 640, 123], atol=0.5)  # pushed over the edge: clipped
    np.testing.assert_allclose(carried.confidence, [0.6, 0.3, 0.5])  # the low one too: ByteTrack's second stage
    np.testing.assert_array_equal(carried_emb, emb)
    again, _ = carrier.step("a", flow_grey(textured((14, 3))), Detections.empty(), emb[:0], False, wh)
    np.testing.assert_allclose(again.xyxy[:2], boxes[:2] + np.float32([14, 3, 14, 3]), atol=0.5)  # chained
    gone = Detections(np.array([[630, 10, 640, 120]], np.float32), np.array([0.5]), np.zeros(1))
    carrier.step("c", flow_grey(textured()), gone, emb[:1], True, wh)
    moved, moved_emb = carrier.step("c", flow_grey(textured()), Detections.empty(), emb[:0], False, (620, 480))
    assert len(moved) == 0 and moved_emb.shape == (0, 8)  # nothing of it left inside a 620-wide frame: dropped
    assert carrier.step("b", flow_grey(textured()), dets, emb, False, wh) is None  # cameras are independent


def test_carried_detections_confirm_a_new_track_on_the_skipped_frame() -> None:
    """ByteTrack shows a track from its second matched frame. Every frame detected: a person appearing on frame 3
    is shown from frame 4. Detecting every other frame with Kalman prediction hides it until frame 5 (the next
    detected frame); carried detections confirm it on frame 4, as every-frame detection does; and when the
    detected frame says its detections are carried into the next one (``next_skipped`` → ``show_births``), the
    track is shown on frame 3 already, since the carried match would only repeat that frame's detection."""
    person = np.array([[100, 100, 150, 250]], np.float32)
    newcomer = np.array([[400, 120, 440, 230]], np.float32)

    def found(frame: int) -> Detections:
        boxes = np.concatenate([person, newcomer]) if frame >= 3 else person
        return Detections(boxes + 3 * frame * np.float32([1, 0, 1, 0]), np.full(len(boxes), 0.7), np.zeros(len(boxes)))

    def shown(prediction: str, every: int, births: bool = False) -> list[int]:
        tracker = CameraTracker.create("bytetrack")
        schedule = DetectionSchedule(SchedulePolicy("fixed", every, prediction=prediction))
        carrier = DetectionCarrier()
        counts = []
        for f in range(1, 7):
            image = textured((3 * f, 0))
            detected = schedule.decide("a")
            carried = carrier.step("a", flow_grey(image), found(f), np.zeros((0, 0), np.float32), detected, (640, 480))
            if detected:
                show = births and schedule.next_skipped("a")
                out = tracker.update(found(f), None, (640, 480), f, show_births=show)
            elif prediction == "detections":
                out = tracker.update(carried[0], None, (640, 480), f)
            else:
                out = tracker.predict((640, 480), f)
            counts.append(len(out))
        return counts

    assert shown("kalman", 1) == [1, 1, 1, 2, 2, 2]
    assert shown("kalman", 2) == [1, 1, 1, 1, 2, 2]
    assert shown("detections", 2) == [1, 1, 1, 2, 2, 2]
    assert shown("detections", 2, births=True) == [1, 1, 2, 2, 2, 2]
    assert shown("detections", 1, births=True) == [1, 1, 1, 2, 2, 2]  # every frame detected: nothing is carried


def test_next_skipped_only_where_the_schedule_is_sure() -> None:
    """Fixed mode knows its next decision; motion and adaptive modes decide on the next frame's own evidence."""
    fixed = DetectionSchedule(SchedulePolicy("fixed", 3))
    assert not fixed.next_skipped("a")  # no frame yet
    seen = []
    for _ in range(6):
        fixed.decide("a")
        seen.append(fixed.next_skipped("a"))
    assert seen == [True, True, False, True, True, False]
    every = DetectionSchedule(SchedulePolicy("fixed", 1))
    every.decide("a")
    assert not every.next_skipped("a")
    for mode in ("motion", "adaptive"):
        other = DetectionSchedule(SchedulePolicy(mode, 3))
        other.decide("a")
        assert not other.next_skipped("a"), mode


def test_a_carried_frames_cut_side_stays_on_the_border_as_the_person_walks_in() -> None:
    """A box cut by the frame's right edge moved 20 px left by the flow keeps its right side on the edge (the
    person's newly visible part) instead of leaving a 20 px gap; the uncut box moves whole."""
    before = np.array([[560, 100, 640, 300], [100, 100, 160, 260]], np.float32)
    after = before - np.float32([20, 0, 20, 0])
    kept = keep_cut_sides(before, after, (640, 480))
    np.testing.assert_allclose(kept, [[540, 100, 640, 300], [80, 100, 140, 260]])
    out = keep_cut_sides(before, before + np.float32([20, 0, 20, 0]), (640, 480))
    np.testing.assert_allclose(out[0], [580, 100, 660, 300])  # moving out: the carrier clips it to the frame
    top_left = np.array([[0, 0, 50, 90]], np.float32)
    np.testing.assert_allclose(keep_cut_sides(top_left, top_left + 10, (640, 480)), [[0, 0, 60, 100]])


def test_a_skipped_frame_sends_the_carried_detections_as_a_normal_frame() -> None:
    cam = camera("b", False)
    dets = Detections(np.array([[1, 2, 30, 60]], np.float32), np.array([0.5]), np.zeros(1))
    frame = track_request(cam, (dets, np.ones((1, 4), np.float32)), births_confirmed_next=True).frame
    assert not frame.predict_only and len(frame.detections) == 1 and frame.embeddings.shape == [1, 4]
    assert not frame.births_confirmed_next  # only a detected frame's births are shown early
    seen = dataclasses.replace(camera("a", True), detections=dets, embeddings=np.ones((1, 4), np.float32))
    assert track_request(seen, None, births_confirmed_next=True).frame.births_confirmed_next
    assert track_request(cam).frame.predict_only  # nothing carried yet: the tracker predicts
