"""Detection: both backends agree, user models load, bad input is refused, the server survives."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest

from detection_svc.config import WEIGHTS_DIR
from detection_svc.detector import Detector
from spoton.frames import encode_frame
from spoton.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from tests.conftest import DATA_HINT, require


@pytest.fixture(scope="module")
def frames(demo_dir: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(demo_dir / "cam2.mp4"))
    out = []
    for i in range(40):
        _, image = cap.read()
        if i % 8 == 0:
            out.append(image)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_torch_and_onnx_backends_agree(frames) -> None:  # type: ignore[no-untyped-def]
    onnx = Detector(WEIGHTS_DIR / "best.onnx", (640, 480), "cpu", [0])
    torch = Detector(WEIGHTS_DIR / "best.pt", (640, 480), "cpu", [0])
    assert onnx.info.backend == "onnxruntime" and torch.info.backend == "torch"
    matched = total = 0
    for image in frames:
        (a,), _ = onnx.detect([image], 0.25, 0.5, 100)
        (b,), _ = torch.detect([image], 0.25, 0.5, 100)
        total += max(len(a), len(b))
        if len(a) and len(b):
            matched += int((_iou(a.xyxy, b.xyxy).max(axis=1) >= 0.9).sum())
    assert total > 10
    assert matched / total >= 0.95  # the agreement criterion


def test_batch_results_match_single_frames(frames) -> None:  # type: ignore[no-untyped-def]
    det = Detector(WEIGHTS_DIR / "best.onnx", (640, 480), "cpu", [0], batch=4)
    batched, _ = det.detect(frames[:4], 0.25, 0.5, 100)
    single = [det.detect([f], 0.25, 0.5, 100)[0][0] for f in frames[:4]]
    for a, b in zip(batched, single, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1.0)


def test_user_onnx_model_loads_through_the_same_path(tmp_path: Path, frames) -> None:  # type: ignore[no-untyped-def]
    from ultralytics import YOLO

    shutil.copy(WEIGHTS_DIR / "best.pt", tmp_path / "mine.pt")
    exported = Path(YOLO(str(tmp_path / "mine.pt")).export(format="onnx", imgsz=(256, 320), opset=17))
    det = Detector(exported, (320, 256), "cpu", [0])
    assert det.info.backend == "onnxruntime" and det.info.weights_source == str(exported)
    assert det.info.classes == ["Normal", "Fall"]
    (d,), _ = det.detect([frames[0]], 0.25, 0.5, 100)
    assert len(d) >= 1


def test_tiled_inference_finds_at_least_as_many_people(frames) -> None:  # type: ignore[no-untyped-def]
    plain = Detector(WEIGHTS_DIR / "best.onnx", (320, 256), "cpu", [0])
    tiled = Detector(WEIGHTS_DIR / "best.onnx", (320, 256), "cpu", [0], tile_wh=(320, 256))
    (a,), _ = plain.detect([frames[0]], 0.25, 0.5, 100)
    (b,), _ = tiled.detect([frames[0]], 0.25, 0.5, 100)
    assert len(b) >= len(a) and len(b) >= 3


def _jpeg(w: int, h: int) -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (w, h)).save(buf, format="JPEG", quality=10)
    return buf.getvalue()


BAD_FRAMES = {
    "empty bytes": common_pb2.Frame(camera_id="c", encoding=common_pb2.FRAME_ENCODING_JPEG),
    "corrupt jpeg": common_pb2.Frame(camera_id="c", encoding=common_pb2.FRAME_ENCODING_JPEG, data=b"\xff\xd8\xffjunk"),
    "raw wrong size": common_pb2.Frame(
        camera_id="c", encoding=common_pb2.FRAME_ENCODING_RAW_BGR8, width=10, height=10, data=b"x" * 299
    ),
    "raw 0x0": common_pb2.Frame(camera_id="c", encoding=common_pb2.FRAME_ENCODING_RAW_BGR8, data=b"x"),
    "20000x20000 jpeg": common_pb2.Frame(
        camera_id="c", encoding=common_pb2.FRAME_ENCODING_JPEG, data=_jpeg(20000, 20000)
    ),
    "unknown encoding": common_pb2.Frame(camera_id="c", encoding=7, data=b"abc"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frames_are_invalid_argument(channel_to, case: str) -> None:  # type: ignore[no-untyped-def]
    stub = detection_pb2_grpc.DetectionServiceStub(channel_to("detection"))
    with pytest.raises(grpc.RpcError) as err:
        stub.Detect(detection_pb2.DetectRequest(frame=BAD_FRAMES[case]), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details()


def test_bad_batch_keeps_the_server_alive(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = detection_pb2_grpc.DetectionServiceStub(channel_to("detection"))
    ok = encode_frame(np.zeros((64, 64, 3), np.uint8), "c", 1, 0)
    too_many = detection_pb2.DetectStreamRequest(batch=detection_pb2.FrameBatch(step=1, frames=[ok] * 65))
    with pytest.raises(grpc.RpcError) as err:
        list(stub.DetectStream(iter([too_many]), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "64" in err.value.details()
    empty = detection_pb2.DetectStreamRequest(batch=detection_pb2.FrameBatch(step=1))
    with pytest.raises(grpc.RpcError) as err:
        list(stub.DetectStream(iter([empty]), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reply = list(
        stub.DetectStream(
            iter([detection_pb2.DetectStreamRequest(batch=detection_pb2.FrameBatch(step=2, frames=[ok]))]), timeout=30
        )
    )
    assert reply[0].batch.step == 2


def test_int8_detector_keeps_recall_and_is_faster() -> None:
    """The INT8 model made at setup (the CPU default) against FP32 on PETS frames with ground truth."""
    from detection_svc.config import DetectionSettings
    from spoton.demo.data import gt_path, vtest_path
    from spoton.evaluation import FrameBoxes, ground_truth_from_mot, score_camera

    int8 = WEIGHTS_DIR / "best_int8.onnx"
    assert int8.exists(), "make weights makes it"
    from spoton.bootstrap.device import cpu_has_int8_dot_product

    auto = DetectionSettings(device="cpu").resolve_weights()
    assert auto == (int8 if cpu_has_int8_dot_product() else WEIGHTS_DIR / "best.onnx")
    assert DetectionSettings(device="cpu", detector_precision="int8").resolve_weights() == int8
    assert DetectionSettings(device="cpu", detector_precision="fp32").resolve_weights().name == "best.onnx"
    require(gt_path(), "the PETS09-S2L1 ground truth", DATA_HINT)
    gt = ground_truth_from_mot({"c": gt_path()})["c"]
    cap = cv2.VideoCapture(str(vtest_path()))
    images = []
    for index in range(1, 201):
        ok, image = cap.read()
        if ok and index % 10 == 0:
            images.append((index, image))
    scores, times = {}, {}
    for name, path in (("fp32", WEIGHTS_DIR / "best.onnx"), ("int8", int8)):
        det = Detector(path, (640, 480), "cpu", [0])
        det.warmup()
        hyp, ms = {}, []
        for index, image in images:
            (d,), t = det.detect([image], 0.25, 0.5, 100)
            hyp[index], ms = FrameBoxes(np.arange(len(d)), d.xyxy.astype(np.float64)), [*ms, t]
        scores[name] = score_camera(gt, hyp, [i for i, _ in images])
        times[name] = float(np.median(ms))
    # Measured on all of PETS every 10th frame: recall 0.711 vs 0.704, precision 0.721 vs 0.724, 42 vs 102 ms.
    assert scores["int8"]["recall"] >= scores["fp32"]["recall"] - 0.03
    assert scores["int8"]["precision"] >= scores["fp32"]["precision"] - 0.03
    assert times["int8"] < 0.8 * times["fp32"], times


def test_int8_is_chosen_only_where_the_cpu_has_vnni_or_amx(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from detection_svc.config import DetectionSettings
    from spoton.bootstrap import device

    int8, fp32 = WEIGHTS_DIR / "best_int8.onnx", WEIGHTS_DIR / "best.onnx"
    for flags, expected in (
        ("fpu sse2 avx avx2 fma", fp32),
        ("fpu avx2 avx512f avx512_vnni", int8),
        ("avx_vnni", int8),
    ):
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(device, "CPU_INFO", tmp_path / "cpuinfo")
        assert DetectionSettings(device="cpu").resolve_weights() == expected, flags
    monkeypatch.setattr(device, "CPU_INFO", tmp_path / "absent")
    assert DetectionSettings(device="cpu").resolve_weights() == fp32
