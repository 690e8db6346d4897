"""CPU inference runtimes for exported detectors: ONNX Runtime and OpenVINO with our own session options.

Ultralytics' AutoBackend opens ``.onnx`` files with a default ONNX Runtime session (a thread per core, busy-waiting
between runs) and compiles OpenVINO IR with only a latency hint, so neither thread pool can be sized; on a small CPU
shared by six services those settings decide the frame rate. Letterboxing, NMS and rescaling stay Ultralytics'
(``detection_svc.detector``); a runtime only maps a batch ``(N, 3, H, W)`` float32 RGB 0..1 to the raw head output
``(N, 4 + classes, anchors)``.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml


@dataclass(frozen=True)
class RuntimeOptions:
    """Thread pools and hints of a CPU runtime (0 = the runtime's own default)."""

    threads: int = 0  # ONNX Runtime intra-op threads; OpenVINO INFERENCE_NUM_THREADS
    inter_threads: int = 1  # ONNX Runtime inter-op threads (only used by its parallel executor)
    spinning: bool = False  # ONNX Runtime intra-op busy-wait between runs
    ov_hint: str = "LATENCY"  # OpenVINO PERFORMANCE_HINT: LATENCY | THROUGHPUT
    ov_streams: int = 0  # OpenVINO NUM_STREAMS; 0 = what the hint picks
    # OpenVINO INFERENCE_PRECISION_HINT for float layers: "" = its default, which is bf16 on CPUs with AMX or
    # AVX-512 BF16 (so an "FP32" model computes in bf16 there) and f32 elsewhere; "f32" | "bf16" force.
    ov_precision: str = ""
    ov_pinning: bool = False  # OpenVINO ENABLE_CPU_PINNING (threads bound to cores; off on a shared host)


class Runtime(Protocol):
    backend: str
    names: dict[int, str]
    static_batch: int | None  # the batch size a static-shape model takes, None = any
    static_hw: tuple[int, int] | None  # the (H, W) a static-shape model takes, None = any

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def is_openvino_model(path: Path) -> bool:
    """An OpenVINO IR: an Ultralytics-style ``*_openvino_model/`` folder or an ``.xml`` file."""
    return path.suffix == ".xml" or (path.is_dir() and any(path.glob("*.xml")))


def _ir_file(path: Path) -> Path:
    return path if path.suffix == ".xml" else next(path.glob("*.xml"))


def read_names(path: Path) -> dict[int, str]:
    """Class names from Ultralytics' export metadata (ONNX ``metadata_props`` or the IR folder's ``metadata.yaml``)."""
    if path.suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        names = ast.literal_eval(props["names"]) if "names" in props else {}
    else:
        meta = (path if path.is_dir() else path.parent) / "metadata.yaml"
        names = (yaml.safe_load(meta.read_text()) or {}).get("names", {}) if meta.exists() else {}
    return {int(k): str(v) for k, v in names.items()}


class OrtRuntime:
    """An ONNX Runtime CPU session with the given intra/inter-op threads and spinning."""

    backend = "onnxruntime"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if options.threads:
            opts.intra_op_num_threads = options.threads
        if options.inter_threads:
            opts.inter_op_num_threads = options.inter_threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spinning else "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if options.spinning else "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        batch, _, h, w = spec.shape
        self.static_batch = batch if isinstance(batch, int) else None
        self.static_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.names = read_names(path)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class OpenVinoRuntime:
    """OpenVINO on the CPU with our own ``ov.Core``: threads, performance hint and streams are settable.

    A dynamic model is reshaped to the static input shape it is called with and compiled once per shape (a batch
    size and network input): static shapes are faster, and OpenVINO's CPU plugin crashes running INT8 models with
    dynamic shapes on AMX CPUs (openvinotoolkit/openvino#37577, the reason Ultralytics does the same there).
    """

    backend = "openvino"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._path = path if path.suffix == ".onnx" else _ir_file(path)
        self._model = self._core.read_model(str(self._path))
        self._input = self._model.input().get_any_name()
        # A dynamic export is reshaped to whatever it is called with; a static one (its anchor count is baked into
        # the graph) runs at its own shape.
        shape = self._model.input().get_partial_shape()
        batch, _, h, w = (d.get_length() if d.is_static else None for d in shape)
        self.static_batch = batch
        self.static_hw = (h, w) if h and w else None
        self.config: dict[str, object] = {"PERFORMANCE_HINT": options.ov_hint}
        if options.threads:
            self.config["INFERENCE_NUM_THREADS"] = options.threads
        if options.ov_streams:
            self.config["NUM_STREAMS"] = options.ov_streams
        if options.ov_precision:
            self.config["INFERENCE_PRECISION_HINT"] = options.ov_precision
        self.config["ENABLE_CPU_PINNING"] = options.ov_pinning
        self._compiled: dict[tuple[int, ...], object] = {}
        self._lock = threading.Lock()
        self.names = read_names(path)

    def compiled(self, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
        """The model compiled for the static input ``shape`` (N, 3, H, W)."""
        with self._lock:
            if shape not in self._compiled:
                model = self._model.clone()
                if not self._model.input().get_partial_shape().is_static:
                    model.reshape({self._input: list(shape)})
                self._compiled[shape] = self._core.compile_model(model, "CPU", self.config)
            return self._compiled[shape]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.compiled(batch.shape)(batch)[0]


def open_runtime(path: Path, backend: str, options: RuntimeOptions) -> Runtime:
    """``backend`` ``onnx`` (an ``.onnx`` file) or ``openvino`` (IR, or an ``.onnx`` file read by OpenVINO)."""
    if backend == "openvino":
        return OpenVinoRuntime(path, options)
    if backend == "onnx":
        return OrtRuntime(path, options)
    raise ValueError(f"no CPU runtime for backend {backend!r}")
