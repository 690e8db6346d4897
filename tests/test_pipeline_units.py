"""The gateway pipeline's parts one by one: ``StageLink`` against a real loopback gRPC server that drops its
streams, each stage's request building and reply merging, the typed step result and what is derived from it, the
session options, the time module, and ``HistoryWriter`` batching and retrying against the real test database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import numpy as np
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from gateway.config import GatewaySettings
from gateway.fanout import SUBSCRIBER_QUEUE, Fanout
from gateway.history import HistoryWriter
from gateway.identity_embed import Choice, IdentityEmbedder
from gateway.link import StageGoneError, StageLink, drive
from gateway.messages import session_ended, session_ended_from_summary
from gateway.options import SessionConfig
from gateway.requests import (
    TRACK_ID_EPOCH,
    ThumbnailPolicy,
    TrackIdOffsets,
    associate_request,
    associate_start,
    identity_embed_request,
    merge_associate,
    merge_detect,
    project_request,
)
from gateway.rows import TrackPoint
from gateway.step import CameraStep
from gateway.work import CameraInput, StepWork
from spoton.db import apply_migrations
from spoton.domain import Detections, FloorPoints, Tracks, tensor_to_array
from spoton.frames import encode_frame
from spoton.launcher import REPO
from spoton.timeutil import dt_to_ns, ns_to_dt, ns_to_iso
from spoton.v1 import common_pb2, detection_pb2, reid_pb2, tracking_pb2

T0_NS = 1_700_000_000_123_456_789
METHOD = "/spoton.test.Echo/Chat"


# ---- StageLink against a real gRPC server --------------------------------------------------------------------------
class EchoServer:
    """A loopback gRPC server with one bidirectional method: each request comes back as ``re:<request>``.
    ``abort_once`` requests make the server drop the stream with UNAVAILABLE the first time it sees them (a
    replica going away), ``hang_up_once`` ones end the stream without a status (a drained process),
    ``refuse`` ones are refused with INVALID_ARGUMENT, and ``down`` makes every stream fail."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.streams = 0
        self.abort_once: set[bytes] = set()
        self.hang_up_once: set[bytes] = set()
        self.refuse: set[bytes] = set()
        self.down = False
        self.server = grpc.aio.server()
        handler = grpc.stream_stream_rpc_method_handler(self._chat)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("spoton.test.Echo", {"Chat": handler}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    async def _chat(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        self.streams += 1
        async for req in requests:
            self.seen.append(req)
            if self.down or req in self.abort_once:
                self.abort_once.discard(req)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")
            if req in self.refuse:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad request")
            if req in self.hang_up_once:
                self.hang_up_once.discard(req)
                return
            yield b"re:" + req


@pytest.fixture
async def echo() -> AsyncIterator[tuple[EchoServer, grpc.aio.Channel]]:
    server = EchoServer()
    await server.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    yield server, channel
    await channel.close()
    await server.server.stop(None)


def echo_link(channel: grpc.aio.Channel, timeout_s: float = 10.0) -> tuple[StageLink, dict]:
    """A link to the echo method, with a record of its reconnects, failures and opened streams."""
    record: dict = {"reconnects": [], "failures": 0, "opened": 0}
    chat = channel.stream_stream(METHOD)

    async def open_call():  # type: ignore[no-untyped-def]
        record["opened"] += 1
        return chat()

    async def on_failure() -> None:
        record["failures"] += 1

    link = StageLink("echo", open_call, timeout_s, lambda n, e: record["reconnects"].append((n, e)), on_failure)
    return link, record


async def test_stage_link_reopens_the_stream_and_resends_the_unanswered_request(echo) -> None:  # type: ignore[no-untyped-def]
    server, channel = echo
    server.abort_once.add(b"2")
    link, record = echo_link(channel)
    replies = [await link.exchange(r) for r in (b"1", b"2", b"3")]
    await link.close()
    assert replies == [b"re:1", b"re:2", b"re:3"]
    assert server.seen == [b"1", b"2", b"2", b"3"]  # request 2 again on the new stream; nothing else doubled
    assert record["reconnects"] == [("echo", "replica going away")] and record["opened"] == 2
    assert link.generation == 1 and record["failures"] == 1


async def test_stage_link_treats_a_stream_ended_without_status_as_gone(echo) -> None:  # type: ignore[no-untyped-def]
    server, channel = echo
    server.hang_up_once.add(b"b")
    link, record = echo_link(channel)
    assert [await link.exchange(r) for r in (b"a", b"b")] == [b"re:a", b"re:b"]
    assert server.seen == [b"a", b"b", b"b"] and server.streams == 2
    assert record["reconnects"] == [("echo", "echo stream ended early")] and link.generation == 1
    link.cancel()


async def test_stage_link_fails_with_the_last_error_when_the_stage_stays_away(echo) -> None:  # type: ignore[no-untyped-def]
    server, channel = echo
    server.down = True
    link, record = echo_link(channel, timeout_s=0.5)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await link.exchange(b"x")
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(record["reconnects"]) == 1  # one outage, told once
    assert record["failures"] >= 2 and record["opened"] == record["failures"] + 1


async def test_stage_link_does_not_retry_a_refused_request(echo) -> None:  # type: ignore[no-untyped-def]
    server, channel = echo
    server.refuse.add(b"bad")
    link, record = echo_link(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await link.exchange(b"bad")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert record["reconnects"] == [] and record["opened"] == 1 and server.seen == [b"bad"]
    link.cancel()


async def test_drive_keeps_steps_in_order_and_records_the_round_trip(echo) -> None:  # type: ignore[no-untyped-def]
    server, channel = echo
    server.abort_once.add(b"2")
    link, _ = echo_link(channel)
    inp: asyncio.Queue = asyncio.Queue()
    out: asyncio.Queue = asyncio.Queue()
    replies: list[bytes] = []
    for step in (1, 2, 3):
        inp.put_nowait(StepWork(step, T0_NS, []))
    inp.put_nowait(None)
    await drive(link, inp, out, lambda w: str(w.step).encode(), lambda w, r: replies.append(r))
    done = [out.get_nowait() for _ in range(4)]
    assert [w.step for w in done[:3]] == [1, 2, 3] and done[3] is None
    assert replies == [b"re:1", b"re:2", b"re:3"]
    assert all(w.stage_ms["echo"] > 0 for w in done[:3])


def test_stage_gone_is_a_connection_error() -> None:
    assert issubclass(StageGoneError, ConnectionError)


# ---- each stage's requests and merges (no gRPC) --------------------------------------------------------------------
def frame(camera_id: str, index: int = 1, ts_ns: int = T0_NS, size: tuple[int, int] = (320, 240)) -> common_pb2.Frame:
    image = np.full((size[1], size[0], 3), 120, np.uint8)
    return encode_frame(image, camera_id, index, ts_ns)


def tracked(camera_id: str, boxes: list, track_ids: list, ts_ns: int = T0_NS) -> CameraInput:
    n = len(boxes)
    cam = CameraInput(camera_id, frame(camera_id, ts_ns=ts_ns))
    cam.detections = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.9), np.zeros(n))
    cam.embeddings = np.eye(max(n, 1), 4, dtype=np.float32)[:n]
    cam.tracks = Tracks(
        np.array(boxes, np.float32).reshape(-1, 4), track_ids, np.full(n, 0.8), np.zeros(n), det_index=np.arange(n)
    )
    return cam


def test_merge_detect_fills_each_camera_in_order() -> None:
    work = StepWork(1, T0_NS, [CameraInput("a", frame("a")), CameraInput("b", frame("b"))])
    box = common_pb2.BBox(x1=1, y1=2, x2=30, y2=80)
    reply = detection_pb2.DetectStreamResponse(
        batch=detection_pb2.DetectionBatch(
            frames=[
                detection_pb2.FrameDetections(detections=[common_pb2.Detection(bbox=box, confidence=0.7)]),
                detection_pb2.FrameDetections(),
            ]
        )
    )
    merge_detect(work, reply)
    assert len(work.cameras[0].detections) == 1 and len(work.cameras[1].detections) == 0
    np.testing.assert_allclose(work.cameras[0].detections.xyxy, [[1, 2, 30, 80]])
    with pytest.raises(ValueError):  # a reply for another number of cameras is a broken stage, not a silent gap
        merge_detect(StepWork(2, T0_NS, [CameraInput("a", frame("a"))]), reply)


def test_identity_embed_request_sends_every_detection_as_colour_context() -> None:
    """Only the chosen tracks' boxes are embedded; every detection of their frame goes along as ``context`` (reid
    learns the camera's colour cast from all the people it sees); cameras with nothing chosen send nothing."""
    boxes = np.array([[1, 2, 30, 80], [40, 5, 70, 90], [100, 10, 130, 95]], np.float32)
    a, b = CameraInput("a", frame("a")), CameraInput("b", frame("b"))
    a.detections, b.detections = Detections(boxes, np.full(3, 0.8), np.zeros(3)), Detections.empty()
    a.identity = [Choice("a", 7, boxes[1], True, True, 0)]
    request = identity_embed_request(StepWork(3, T0_NS, [a, b]))
    assert request is not None and request.purpose == reid_pb2.EMBEDDING_PURPOSE_IDENTITY
    (item,) = request.items
    assert [(x.x1, x.y2) for x in item.boxes] == [(40, 90)]
    assert [(x.x1, x.y2) for x in item.context] == [(1, 80), (40, 90), (100, 95)]
    assert identity_embed_request(StepWork(4, T0_NS, [b])) is None


@pytest.mark.parametrize(
    ("generation", "resumed", "offset"),
    [(0, False, 0), (1, True, 0), (1, False, TRACK_ID_EPOCH)],
)
def test_track_ids_move_to_a_new_range_when_a_tracker_starts_afresh(
    generation: int, resumed: bool, offset: int
) -> None:
    offsets = TrackIdOffsets()
    cam = tracked("a", [[0, 0, 10, 20]], [7])
    reply = tracking_pb2.TrackResponse(tracks=cam.tracks.to_proto(), resumed=resumed)
    offsets.merge(cam, reply, generation)
    assert cam.tracks.track_id.tolist() == [7 + offset]
    offsets.merge(cam, reply, generation)  # the same generation again: no further move
    assert cam.tracks.track_id.tolist() == [7 + offset]


def test_project_request_leaves_uncalibrated_cameras_out() -> None:
    work = StepWork(3, T0_NS, [tracked("a", [[0, 0, 10, 20]], [1]), tracked("b", [[5, 5, 9, 9]], [2])])
    request = project_request(work, "demo", {"b"})
    assert request.step == 3 and request.video_set == "demo"
    assert [c.camera_id for c in request.cameras] == ["b"] and len(request.cameras[0].boxes) == 1


def test_thumbnail_policy_offers_a_crop_when_a_track_appears_then_every_two_seconds() -> None:
    policy = ThumbnailPolicy()
    assert policy.due("a", 1, T0_NS)
    policy.sent_at("a", 1, T0_NS)
    assert not policy.due("a", 1, T0_NS + 1_999_999_999)
    assert policy.due("a", 1, T0_NS + 2_000_000_000) and policy.due("b", 1, T0_NS)


def test_associate_request_carries_embeddings_floor_points_and_due_crops() -> None:
    cam = tracked("a", [[40, 20, 120, 220], [200, 30, 204, 40]], [5, 6])
    cam.floor = FloorPoints([[1.5, 2.5], [0, 0]], [True, False])
    policy = ThumbnailPolicy()
    identity = IdentityEmbedder()
    (choice,) = [c for c in identity.choose("a", T0_NS, cam.tracks, cam.detections, lambda: None) if c.track_id == 5]
    identity.remember(choice, np.array([0.6, 0.8, 0, 0], np.float32), T0_NS)  # track 6 has no identity embedding yet
    request = associate_request(StepWork(4, T0_NS, [cam]), policy, identity)
    first, second = request.step.observations
    assert request.step.step == 4 and request.step.timestamp_ns == T0_NS
    assert (first.camera_id, first.track_id, first.timestamp_ns) == ("a", 5, T0_NS)
    assert first.HasField("embedding") and (first.floor.x_m, first.floor.y_m) == (1.5, 2.5)
    assert np.allclose(tensor_to_array(first.embedding).reshape(-1), [0.6, 0.8, 0, 0])
    assert not second.HasField("embedding")
    assert first.crop_jpeg.startswith(b"\xff\xd8") and 0 < first.visibility <= 1
    assert not second.HasField("floor") and second.crop_jpeg == b""  # a 4 x 10 px box shows no one
    later = associate_request(StepWork(5, T0_NS + 40_000_000, [cam]), policy, identity).step.observations[0]
    assert not later.crop_jpeg and later.HasField("embedding")  # the latest identity embedding, every step


def test_a_box_cut_by_the_frames_bottom_edge_is_flagged_feet_cut() -> None:
    # 320 x 240 frame: a box down to the last row (within 2 px) shows no feet; one ending 10 px above it does.
    cam = tracked("a", [[40, 100, 120, 239.0], [150, 60, 200, 230], [220, 100, 300, 238.5]], [1, 2, 3])
    obs = associate_request(StepWork(1, T0_NS, [cam]), ThumbnailPolicy(enabled=False), IdentityEmbedder())
    assert [ob.feet_cut for ob in obs.step.observations] == [True, False, True]


def test_associate_start_and_merge_keep_global_ids_from_being_reused() -> None:
    assert not associate_start("s1", {"max_age_s": 3}, 0).start.options.fields.get("first_global_id")
    start = associate_start("s1", {"max_age_s": 3}, 41).start
    assert start.session_id == "s1" and start.options["first_global_id"] == 42 and start.options["max_age_s"] == 3
    work = StepWork(1, T0_NS, [tracked("a", [[0, 0, 10, 20], [0, 0, 10, 20]], [1, 2]), tracked("b", [], [])])
    reply = reid_pb2.AssociateResponse(assignments=[reid_pb2.Assignment(camera_id="a", track_id=2, global_id=9)])
    assert merge_associate(work, reply) == 9
    assert work.cameras[0].global_ids.tolist() == [0, 9] and work.cameras[1].global_ids.tolist() == []
    assert merge_associate(work, reid_pb2.AssociateResponse()) == 0


# ---- the typed step result and what is derived from it -------------------------------------------------------------
def finished_step() -> StepWork:
    """Camera a (calibrated) sees persons 3 and (unassociated) track 2; camera b (uncalibrated) sees person 3."""
    a = tracked("a", [[10.04, 20.06, 50.0, 120.0], [60, 20, 90, 110]], [1, 2])
    a.floor = FloorPoints([[1.00049, 2.0], [4.0, 4.0]], [True, True])
    a.global_ids = np.array([3, 0])
    b = tracked("b", [[100, 50, 180, 200]], [7], ts_ns=T0_NS + 1000)
    b.global_ids = np.array([3])
    work = StepWork(12, T0_NS + 1000, [a, b])
    work.finish("sess")
    return work


def test_step_result_renders_the_step_message() -> None:
    message = finished_step().result.message()
    assert message["type"] == "step" and message["session_id"] == "sess" and message["step"] == 12
    assert message["timestamp"] == "2023-11-14T22:13:20.123457Z"
    assert list(message["cameras"]) == ["a", "b"] and message["cameras"]["a"]["frame_index"] == 1
    assert message["cameras"]["a"]["tracks"] == [
        {"track_id": 1, "global_id": 3, "bbox": [10.0, 20.1, 50.0, 120.0], "confidence": 0.8, "floor": [1.0, 2.0]},
        {"track_id": 2, "global_id": None, "bbox": [60.0, 20.0, 90.0, 110.0], "confidence": 0.8, "floor": [4.0, 4.0]},
    ]
    assert message["cameras"]["b"]["tracks"][0]["floor"] is None


def test_step_result_gives_the_track_point_rows() -> None:
    rows = finished_step().result.track_points()
    assert [r.camera_id for r in rows] == ["a", "a", "b"] and all(isinstance(r, TrackPoint) for r in rows)
    assert rows[0] == TrackPoint(
        time=ns_to_dt(T0_NS),
        session_id="sess",
        step=12,
        camera_id="a",
        frame_index=1,
        track_id=1,
        global_id=3,
        bbox=[10.0, 20.1, 50.0, 120.0],
        confidence=pytest.approx(0.8),
        floor_x_m=1.0,
        floor_y_m=2.0,
    )
    assert rows[1].global_id is None and (rows[2].floor_x_m, rows[2].floor_y_m) == (None, None)


def test_step_result_gives_the_zone_detector_one_point_per_person() -> None:
    work = finished_step()
    work.cameras[1].floor = FloorPoints([[2.0, 4.0]], [True])  # b calibrated too: person 3 is their mean
    points = work.finish("sess").floor_points()
    assert list(points) == [3]  # track 2 has no global id
    np.testing.assert_allclose(points[3], [1.500245, 3.0])
    assert finished_step().result.floor_points()[3].tolist() == [1.00049, 2.0]  # unrounded, no JSON round trip


def test_camera_step_refuses_misshapen_arrays() -> None:
    z = np.zeros
    with pytest.raises(ValueError, match="global_id"):
        CameraStep("a", 1, T0_NS, z(2), z(3), z((2, 4)), z(2), z((2, 2)), z(2, bool))
    with pytest.raises(ValueError, match="floor_xy_m"):
        CameraStep("a", 1, T0_NS, z(2), z(2), z((2, 4)), z(2), z((2, 3)), z(2, bool))


def test_session_ended_is_built_in_one_place() -> None:
    live = {"session_id": "s", "status": "failed", "steps": 4, "last_error": "UNAVAILABLE: gone"}
    expected = {
        "type": "session_ended",
        "session_id": "s",
        "status": "failed",
        "steps": 4,
        "error": "UNAVAILABLE: gone",
    }
    assert session_ended("s", "failed", 4, "UNAVAILABLE: gone") == expected
    assert session_ended_from_summary("s", live) == expected


async def test_fanout_routes_each_message_and_a_slow_subscriber_loses_its_oldest() -> None:
    fanout = Fanout("s", None)
    tracking, events = fanout.subscribe(), fanout.subscribe(events=True)
    for i in range(SUBSCRIBER_QUEUE + 2):
        fanout.step({"type": "step", "step": i + 1})
    fanout.event({"type": "zone_event"})
    fanout.ended(session_ended("s", "finished", 3, None), lambda: pytest.fail("no Redis: no summary"))
    steps = [tracking.get_nowait() for _ in range(tracking.qsize())]
    assert len(steps) == SUBSCRIBER_QUEUE and steps[0]["step"] == 4 and steps[-1]["type"] == "session_ended"
    assert [events.get_nowait()["type"] for _ in range(2)] == ["zone_event", "session_ended"]
    fanout.unsubscribe(tracking)
    fanout.step({"type": "step", "step": 99})
    assert tracking.empty() and not fanout.subscribers


# ---- options and times ---------------------------------------------------------------------------------------------
def test_session_options_are_resolved_once_over_the_settings() -> None:
    settings = GatewaySettings(target_fps=5.0, frame_jpeg_quality=70, tracker_type="ocsort")
    default = SessionConfig.resolve({}, settings)
    assert (default.target_fps, default.jpeg_quality, default.tracker, default.frame_encoding) == (
        5.0,
        70,
        "ocsort",
        "jpeg",
    )
    assert default.media_start_ns > 0 and default.max_steps == 0 and not default.loop
    given = SessionConfig.resolve(
        {"target_fps": 2, "jpeg_quality": 90, "tracker": "bytetrack", "media_start_ns": 7, "tracker_options": {"a": 1}},
        settings,
    )
    assert (given.target_fps, given.jpeg_quality, given.tracker, given.media_start_ns) == (2.0, 90, "bytetrack", 7)
    with pytest.raises(TypeError):
        given.tracker_options["a"] = 2  # type: ignore[index]
    with pytest.raises(ValueError, match="frame_encoding"):
        SessionConfig.resolve({"frame_encoding": "gif"}, settings)


@pytest.mark.parametrize(
    ("ts_ns", "iso"),
    [(0, "1970-01-01T00:00:00Z"), (40_000_000, "1970-01-01T00:00:00.040000Z"), (T0_NS, "2023-11-14T22:13:20.123456Z")],
)
def test_times_convert_exactly_to_the_microsecond(ts_ns: int, iso: str) -> None:
    assert ns_to_iso(ts_ns) == iso
    dt = ns_to_dt(ts_ns)
    assert dt.tzinfo is UTC and dt_to_ns(dt) == ts_ns // 1000 * 1000
    assert dt_to_ns(datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)) == T0_NS // 1000 * 1000


# ---- HistoryWriter against the real test database ------------------------------------------------------------------
@pytest.fixture(scope="module")
def history_db(database_url: str) -> str:
    apply_migrations(database_url, REPO / "gateway" / "migrations", "gateway")
    return database_url


def points(session_id: str, n: int, gid: int | None = 1) -> list[TrackPoint]:
    return [
        TrackPoint(
            ns_to_dt(T0_NS + i * 40_000_000), session_id, i + 1, "cam1", i + 1, 1, gid, [0, 0, 10, 20], 0.9, 1.0, 2.0
        )
        for i in range(n)
    ]


def stored(url: str, session_id: str) -> tuple[int, list]:
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (session_id,)).fetchone()[0]
        persons = conn.execute("SELECT global_id, cameras FROM persons WHERE session_id = %s", (session_id,)).fetchall()
    return count, persons


async def test_history_writer_flushes_a_full_batch_without_waiting_for_the_timer(history_db: str) -> None:
    sid = f"unit-{uuid.uuid4().hex[:8]}"
    writer = HistoryWriter(history_db, flush_s=30.0, batch_rows=50)
    await writer.start()
    try:
        writer.add_rows(points(sid, 30))
        await asyncio.sleep(0.5)
        assert writer.status()["rows_pending"] == 30  # under a batch and long before the timer: still queued

        writer.add_rows(points(sid, 50)[30:])  # 20 more with keys of their own (track and time are in the key)
        for _ in range(100):
            if writer.rows_written == 50:
                break
            await asyncio.sleep(0.1)
        assert writer.rows_written == 50 and writer.status()["rows_pending"] == 0
        assert stored(history_db, sid) == (50, [(1, ["cam1"])])
    finally:
        await writer.close()


async def test_history_writer_keeps_a_failed_batch_and_writes_it_once_on_retry(history_db: str) -> None:
    sid = f"unit-{uuid.uuid4().hex[:8]}"
    name = f"writer-{sid}"
    writer = HistoryWriter(make_conninfo(history_db, application_name=name), flush_s=30.0)
    writer.add_rows(points(sid, 5))
    await writer.flush()  # connects and writes the first five
    with psycopg.connect(history_db, autocommit=True) as admin:  # the database drops the writer's connection
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    assert killed == [(True,)]
    writer.add_rows(points(sid, 7)[5:])
    with pytest.raises(psycopg.OperationalError):
        await writer.flush()
    assert writer.failures == 1 and not writer.connected and writer.status()["rows_pending"] == 2
    await writer.flush()  # reconnects; the kept rows go in once
    assert writer.connected and writer.rows_written == 7 and stored(history_db, sid) == (7, [(1, ["cam1"])])
    await writer.close()


async def test_history_writer_bounds_what_it_holds_while_the_database_is_away() -> None:
    writer = HistoryWriter("postgresql://postgres@127.0.0.1:1/none", max_pending_rows=10)
    writer.add_rows(points("away", 25))
    assert writer.status()["rows_pending"] == 10 and writer.rows_dropped == 15
    with pytest.raises(psycopg.OperationalError):
        await writer.flush()
    assert writer.status()["rows_pending"] == 10 and writer.failures == 1


def test_a_transport_internal_error_reopens_the_stream_and_a_stage_error_does_not() -> None:
    """A peer killed mid-stream can end the call with INTERNAL from gRPC core itself: that is a lost connection
    (retry); an INTERNAL raised by the stage, and INVALID_ARGUMENT, are the stage's answer (fail)."""
    import grpc

    from gateway.link import retryable

    def err(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
        return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)

    assert retryable(err(grpc.StatusCode.INTERNAL, "Internal error from Core"))
    assert retryable(err(grpc.StatusCode.UNAVAILABLE, "Socket closed"))
    assert not retryable(err(grpc.StatusCode.INTERNAL, "mapping failed: singular homography"))
    assert not retryable(err(grpc.StatusCode.INVALID_ARGUMENT, "bad frame"))
