"""Domain types: validation and proto round trips."""

from __future__ import annotations

import numpy as np
import pytest

from spoton.domain import Detections, FloorPoints, Tracks, array_to_tensor, tensor_to_array, tensor_to_rows
from spoton.frames import decode_frame, encode_frame
from spoton.v1 import common_pb2, tracking_pb2


def test_detections_round_trip() -> None:
    d = Detections(np.array([[1, 2, 30, 80], [5, 5, 6, 9]], np.float32), [0.9, 0.3], [0, 1])
    back = Detections.from_proto(d.to_proto())
    np.testing.assert_allclose(back.xyxy, d.xyxy)
    np.testing.assert_allclose(back.confidence, d.confidence)
    np.testing.assert_array_equal(back.class_id, d.class_id)
    assert d.to_boxmot().shape == (2, 6)
    assert len(Detections.empty()) == 0 and len(Detections.from_proto([])) == 0


@pytest.mark.parametrize(
    ("xyxy", "conf", "cls", "message"),
    [
        (np.zeros((2, 3)), [1, 1], [0, 0], "shape"),
        ([[0, 0, 1, 1]], [1, 1], [0], "confidence"),
        ([[5, 0, 1, 1]], [1], [0], "x2 >= x1"),
        ([[np.nan, 0, 1, 1]], [1], [0], "finite"),
    ],
)
def test_detections_validation(xyxy, conf, cls, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        Detections(xyxy, conf, cls)


def test_tracks_round_trip() -> None:
    t = Tracks([[0, 0, 10, 20]], [7], [0.8], [0], [tracking_pb2.TRACK_STATE_CONFIRMED], [4], [3], [0])
    back = Tracks.from_proto(t.to_proto())
    assert back.track_id.tolist() == [7] and back.age.tolist() == [4] and back.det_index.tolist() == [0]
    assert back.to_proto()[0].state == tracking_pb2.TRACK_STATE_CONFIRMED


def test_floor_points_round_trip_keeps_invalid() -> None:
    f = FloorPoints([[1.5, -2.0], [0, 0]], [True, False])
    back = FloorPoints.from_proto(f.to_proto())
    assert back.valid.tolist() == [True, False]
    np.testing.assert_allclose(back.xy_m[0], [1.5, -2.0])


def test_tensor_round_trip_and_errors() -> None:
    a = np.random.default_rng(0).normal(size=(3, 1280)).astype(np.float32)
    np.testing.assert_array_equal(tensor_to_array(array_to_tensor(a)), a)
    bad = array_to_tensor(a)
    bad.shape[:] = [3, 1281]
    with pytest.raises(ValueError, match="bytes"):
        tensor_to_array(bad)
    with pytest.raises(ValueError, match="dtype"):
        tensor_to_array(common_pb2.Tensor(dtype=0, shape=[1], data=b"1234"))


@pytest.mark.parametrize(
    "encoding", [common_pb2.FRAME_ENCODING_JPEG, common_pb2.FRAME_ENCODING_PNG, common_pb2.FRAME_ENCODING_RAW_BGR8]
)
def test_frame_round_trip(encoding: int) -> None:
    img = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    out = decode_frame(encode_frame(img, "c", 1, 0, encoding))
    assert out.shape == img.shape
    if encoding != common_pb2.FRAME_ENCODING_JPEG:
        np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize(
    "frame",
    [
        common_pb2.Frame(encoding=common_pb2.FRAME_ENCODING_JPEG, data=b"not a jpeg"),
        common_pb2.Frame(encoding=common_pb2.FRAME_ENCODING_JPEG),
        common_pb2.Frame(encoding=common_pb2.FRAME_ENCODING_RAW_BGR8, width=4, height=4, data=b"123"),
        common_pb2.Frame(encoding=99, data=b"x"),
    ],
)
def test_decode_frame_rejects_bad_frames(frame: common_pb2.Frame) -> None:
    with pytest.raises(ValueError):
        decode_frame(frame)


def test_tensor_to_rows_accepts_empty_frames() -> None:
    assert tensor_to_rows(array_to_tensor(np.zeros((0, 1280), np.float32)), 0).shape == (0, 1280)
    assert tensor_to_rows(array_to_tensor(np.ones((2, 8), np.float32)), 2).shape == (2, 8)
    with pytest.raises(ValueError, match="expected 3 rows"):
        tensor_to_rows(array_to_tensor(np.ones((2, 8), np.float32)), 3)
