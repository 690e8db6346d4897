"""Style: ruff check and ruff format are clean (CONVENTIONS §5)."""

from __future__ import annotations

import subprocess

import pytest

from spoton.launcher import REPO
from tests.conftest import require
from tests.test_contracts import venv_tool


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args: list[str]) -> None:
    ruff = venv_tool("ruff")
    require(ruff, "ruff", "pip install -e '.[dev]' (make install)")
    result = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
