"""Which device a model service runs on, without importing PyTorch on machines that have no NVIDIA GPU."""

from __future__ import annotations

from pathlib import Path

NVIDIA_DRIVER = Path("/proc/driver/nvidia")


def pick_device(requested: str) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is visible, else ``cpu``; anything else is returned as given.

    PyTorch (hundreds of MB) is only imported to ask when the NVIDIA driver is present at all."""
    if requested not in ("", "auto"):
        return requested
    if not NVIDIA_DRIVER.exists():
        return "cpu"
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"
