"""Contracts: buf lint, generated-code drift, every RPC of DESIGN §2 declared."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spoton.launcher import REPO
from spoton.protogen import generate
from spoton.v1 import analytics_pb2, detection_pb2, mapping_pb2, reid_pb2, tracking_pb2
from tests.conftest import require

EXPECTED = {
    (detection_pb2, "DetectionService"): {"Detect", "DetectStream", "GetModelInfo"},
    (reid_pb2, "ReidService"): {
        "Embed",
        "EmbedStream",
        "GetModelInfo",
        "Associate",
        "MergeIdentities",
        "SplitTrack",
        "UndoCorrection",
        "ResetGallery",
        "GetGalleryStats",
        "GetPersonThumbnail",
        "SearchPersons",
        "PurgeHistory",
    },
    (tracking_pb2, "TrackingService"): {"Track", "ListTrackers"},
    (mapping_pb2, "MappingService"): {
        "SetCalibration",
        "GetCalibration",
        "ListCalibrations",
        "ListCalibrationVersions",
        "RollbackCalibration",
        "FitCalibration",
        "Project",
        "ProjectBoxes",
        "ProjectStream",
    },
    (analytics_pb2, "AnalyticsService"): {
        "Occupancy",
        "PeopleCount",
        "Dwell",
        "Heatmap",
        "ZoneEvents",
        "LineCrossings",
        "Trajectory",
        "Summary",
        "Export",
    },
}
BIDI = {"DetectStream", "EmbedStream", "Associate", "Track", "ProjectStream"}


def venv_tool(name: str) -> str | None:
    """A command from PATH, or installed beside this interpreter (``make test`` does not activate the venv)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def test_generated_stubs_match_protos(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = sorted((tmp_path / "spoton" / "v1").glob("*_pb2*.py*"))
    assert fresh, "protoc generated nothing"
    for path in fresh:
        committed = REPO / "spoton" / "v1" / path.name
        assert committed.exists(), f"{path.name} is not committed: run `make protos`"
        assert committed.read_bytes() == path.read_bytes(), f"{path.name} drifted from the protos: run `make protos`"
    committed_names = {p.name for p in (REPO / "spoton" / "v1").glob("*_pb2*.py*")}
    assert committed_names == {p.name for p in fresh}


def test_buf_lint_standard() -> None:
    buf = venv_tool("buf")
    require(buf, "buf (PyPI buf-bin)", "pip install -e '.[dev]' (make install)")
    result = subprocess.run([buf, "lint"], cwd=REPO / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "service"), list(EXPECTED))
def test_every_rpc_declared(module, service) -> None:  # type: ignore[no-untyped-def]
    desc = module.DESCRIPTOR.services_by_name[service]
    assert desc.full_name == f"spoton.v1.{service}"
    methods = {m.name: m for m in desc.methods}
    assert set(methods) == EXPECTED[(module, service)]
    for name, m in methods.items():
        assert m.input_type.name.endswith("Request") and m.output_type.name.endswith("Response"), name
        if name in BIDI:
            assert m.client_streaming and m.server_streaming, f"{name} must be bidirectional"
