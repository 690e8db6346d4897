"""Which device a model service runs on, without importing PyTorch on machines that have no NVIDIA GPU."""

from __future__ import annotations

from pathlib import Path

NVIDIA_DRIVER = Path("/proc/driver/nvidia")
CPU_INFO = Path("/proc/cpuinfo")
# Instructions that multiply int8 in one step without 16-bit intermediate saturation.
INT8_DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        text = CPU_INFO.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_int8_dot_product() -> bool:
    """Whether this CPU has VNNI or AMX. Without them ONNX Runtime's u8s8 kernels go through 16-bit saturating
    multiplies (its quantization guide warns of this on AVX2/AVX-512 machines), and the INT8 detector lost
    accuracy here: on an AVX2-only AMD EPYC recall/precision 0.800/0.784 vs FP32 0.810/0.808 on the demo cameras,
    where an AVX-512 VNNI Xeon measured equal accuracy (README, "Measured")."""
    return bool(INT8_DOT_PRODUCT_FLAGS & cpu_flags())


def pick_device(requested: str) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is visible, else ``cpu``; anything else is returned as given.

    PyTorch (hundreds of MB) is only imported to ask when the NVIDIA driver is present at all."""
    if requested not in ("", "auto"):
        return requested
    if not NVIDIA_DRIVER.exists():
        return "cpu"
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"
