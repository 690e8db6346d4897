"""Detection: both backends agree, user models load, bad input is refused, the server survives."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest

from detection_svc.config import WEIGHTS_DIR
from detection_svc.detector import Detector
from spoton.domain import Detections
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

    onnx = DetectionSettings(device="cpu", detector_backend="onnx").resolve_weights()
    assert onnx == (int8 if cpu_has_int8_dot_product() else WEIGHTS_DIR / "best.onnx")
    forced = DetectionSettings(device="cpu", detector_backend="onnx", detector_precision="int8")
    assert forced.resolve() == ("onnx", int8)
    fp32 = DetectionSettings(device="cpu", detector_backend="onnx", detector_precision="fp32")
    assert fp32.resolve_weights().name == "best.onnx"
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


def test_auto_backend_follows_the_cpu_table(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """DETECTOR_BACKEND=auto: OpenVINO INT8 with AMX, VNNI or AVX2, ONNX Runtime FP32 without AVX2;
    DETECTOR_BACKEND=onnx keeps INT8 to VNNI/AMX CPUs (ORT's u8s8 kernels saturate on AVX2); DETECTOR_PRECISION=int8
    (= int8w8) is OpenVINO's 8-bit-weight model everywhere, int8w7 its 7-bit-weight one (OpenVINO only)."""
    from detection_svc.config import DetectionSettings, cpu_choice
    from spoton.bootstrap import device

    ov_int8, ov_fp32 = WEIGHTS_DIR / "best_int8_openvino_model", WEIGHTS_DIR / "best_openvino_model"
    ov_w7 = WEIGHTS_DIR / "best_int8w7_openvino_model"
    int8, fp32 = WEIGHTS_DIR / "best_int8.onnx", WEIGHTS_DIR / "best.onnx"
    assert ov_int8.is_dir() and ov_fp32.is_dir() and ov_w7.is_dir(), "make weights makes them"
    for flags, auto, onnx, ov_int8_here in (
        ("fpu sse2 avx avx2 fma", ("openvino", ov_int8), ("onnx", fp32), ov_int8),
        ("fpu avx2 avx512f avx512_vnni", ("openvino", ov_int8), ("onnx", int8), ov_int8),
        ("fpu avx2 avx_vnni", ("openvino", ov_int8), ("onnx", int8), ov_int8),
        (
            "fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile",
            ("openvino", ov_int8),
            ("onnx", int8),
            ov_int8,
        ),
        ("fpu sse2 sse4_2 avx", ("onnx", fp32), ("onnx", fp32), ov_int8),
    ):
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(device, "CPU_INFO", tmp_path / "cpuinfo")
        assert DetectionSettings(device="cpu").resolve() == auto, flags
        assert DetectionSettings(device="cpu", detector_backend="onnx").resolve() == onnx, flags
        assert DetectionSettings(device="cpu", detector_precision="fp32").resolve()[1] in (ov_fp32, fp32), flags
        forced = DetectionSettings(device="cpu", detector_backend="openvino", detector_precision="int8")
        assert forced.resolve() == ("openvino", ov_int8_here), flags
        for precision, path in (("int8w8", ov_int8), ("int8w7", ov_w7)):
            forced = DetectionSettings(device="cpu", detector_backend="openvino", detector_precision=precision)
            assert forced.resolve() == ("openvino", path), (flags, precision)
        with pytest.raises(FileNotFoundError, match="int8w7"):
            DetectionSettings(device="cpu", detector_backend="onnx", detector_precision="int8w7").resolve()
    monkeypatch.setattr(device, "CPU_INFO", tmp_path / "absent")
    assert DetectionSettings(device="cpu").resolve() == ("onnx", fp32)
    assert cpu_choice(frozenset({"avx2", "avx512_vnni"})) == ("openvino", "int8")
    assert cpu_choice(frozenset({"avx2", "avx512_vnni", "amx_bf16"})) == ("openvino", "int8")
    assert cpu_choice(frozenset({"avx2"})) == ("openvino", "int8")
    with pytest.raises(ValueError, match="DETECTOR_PRECISION"):
        DetectionSettings(device="cpu", detector_precision="int4").resolve()
    # A user's ONNX file runs on OpenVINO where the table picks it, on ONNX Runtime when asked.
    (tmp_path / "cpuinfo").write_text("flags\t\t: avx2\n")
    monkeypatch.setattr(device, "CPU_INFO", tmp_path / "cpuinfo")
    assert DetectionSettings(device="cpu", detector_weights=str(fp32)).resolve() == ("openvino", fp32)
    assert DetectionSettings(device="cpu", detector_weights=str(fp32), detector_backend="onnx").resolve()[0] == "onnx"
    with pytest.raises(ValueError, match="DETECTOR_BACKEND"):
        DetectionSettings(device="cpu", detector_backend="tensorrt").resolve()


@pytest.fixture(scope="module")
def openvino_service(tmp_path_factory, demo_dir):  # type: ignore[no-untyped-def]
    """A detection service process alone, on the OpenVINO backend (the FP32 IR made at setup), two threads."""
    from spoton.launcher import start_stack

    assert (WEIGHTS_DIR / "best_openvino_model" / "best.xml").exists(), "make weights makes it"
    env = {"DETECTOR_BACKEND": "openvino", "DETECTOR_PRECISION": "fp32", "DETECTOR_THREADS": "2"}
    stack = start_stack(tmp_path_factory.mktemp("openvino-logs"), "", demo_dir, extra_env=env, only=("detection",))
    yield stack
    stack.stop()


def test_openvino_service_detects_like_onnx(openvino_service, frames) -> None:  # type: ignore[no-untyped-def]
    """GetModelInfo names OpenVINO and the IR; one DetectStream message of four cameras (one batched forward pass)
    finds the boxes ONNX Runtime finds on the same decoded frames."""
    from spoton.frames import decode_frame

    with grpc.insecure_channel(openvino_service.addr("detection")) as ch:
        stub = detection_pb2_grpc.DetectionServiceStub(ch)
        info = stub.GetModelInfo(detection_pb2.DetectionServiceGetModelInfoRequest(), timeout=60).info
        assert info.backend == "openvino" and info.device == "cpu"
        assert info.weights_source == str(WEIGHTS_DIR / "best_openvino_model")
        assert list(info.classes) == ["Normal", "Fall"] and list(info.input_size) == [640, 480]
        sent = [encode_frame(image, f"cam{i}", 7, 0) for i, image in enumerate(frames[:4])]
        request = detection_pb2.DetectStreamRequest(batch=detection_pb2.FrameBatch(step=3, frames=sent))
        (reply,) = list(stub.DetectStream(iter([request]), timeout=120))
    assert reply.batch.step == 3 and [f.camera_id for f in reply.batch.frames] == ["cam0", "cam1", "cam2", "cam3"]
    onnx = Detector(WEIGHTS_DIR / "best.onnx", (640, 480), "cpu", [0], backend="onnx")
    reference, _ = onnx.detect([decode_frame(f, 1 << 24) for f in sent], 0.25, 0.5, 100)
    matched = total = 0
    for got, want in zip(reply.batch.frames, reference, strict=True):
        boxes = Detections.from_proto(got.detections).xyxy
        total += max(len(boxes), len(want))
        if len(boxes) and len(want):
            matched += int((_iou(boxes, want.xyxy).max(axis=1) >= 0.9).sum())
    assert total > 10
    assert matched / total >= 0.95  # the same criterion as PyTorch vs ONNX Runtime


def test_openvino_int8_keeps_recall() -> None:
    """The NNCF INT8 IRs made at setup (``DETECTOR_PRECISION=int8``: 8-bit weights; ``int8w7``: 7-bit weights)
    against the OpenVINO FP32 IR (f32 precision) on PETS frames with ground truth, batched four frames per forward
    pass: recall and precision within 0.03 of FP32 on every CPU, at under 0.75x its CPU time."""
    from detection_svc.config import DetectionSettings
    from detection_svc.runtimes import RuntimeOptions
    from spoton.demo.data import gt_path, vtest_path
    from spoton.evaluation import FrameBoxes, ground_truth_from_mot, score_camera

    models = {"fp32": WEIGHTS_DIR / "best_openvino_model"}
    for precision in ("int8", "int8w7"):
        settings = DetectionSettings(device="cpu", detector_backend="openvino", detector_precision=precision)
        models[precision] = settings.resolve()[1]
    assert [p.name for p in models.values()] == [
        "best_openvino_model",
        "best_int8_openvino_model",
        "best_int8w7_openvino_model",
    ]
    assert all(p.is_dir() for p in models.values()), "make weights makes them"
    require(gt_path(), "the PETS09-S2L1 ground truth", DATA_HINT)
    gt = ground_truth_from_mot({"c": gt_path()})["c"]
    cap = cv2.VideoCapture(str(vtest_path()))
    images = []
    for index in range(1, 201):
        ok, image = cap.read()
        if ok and index % 10 == 0:
            images.append((index, image))
    scores, cpu = {}, {}
    for name, path in models.items():
        det = Detector(path, (640, 480), "cpu", [0], batch=4, runtime=RuntimeOptions(threads=1, ov_precision="f32"))
        assert det.info.backend == "openvino"
        det.warmup()
        t0 = time.process_time()
        found, _ = det.detect([image for _, image in images], 0.25, 0.5, 100)
        cpu[name] = time.process_time() - t0
        hyp = {
            i: FrameBoxes(np.arange(len(d)), d.xyxy.astype(np.float64)) for (i, _), d in zip(images, found, strict=True)
        }
        scores[name] = score_camera(gt, hyp, [i for i, _ in images])
    # Measured on all of PETS every 10th frame (bench/detection_eval.py, README "Detector on a CPU"): 8-bit weights
    # -0.006 recall, -0.012 precision with AMX/VNNI, -0.011 / -0.012 on an AVX2 EPYC at 0.53x the CPU; 7-bit weights
    # -0.008 / -0.008 there (on AVX-512 without VNNI, oneDNN capped, 8-bit weights lost -0.036 / -0.029).
    assert scores["fp32"]["recall"] > 0.5
    for name in ("int8", "int8w7"):
        assert scores[name]["recall"] >= scores["fp32"]["recall"] - 0.03, scores
        assert scores[name]["precision"] >= scores["fp32"]["precision"] - 0.03, scores
        assert cpu[name] < 0.75 * cpu["fp32"], cpu
