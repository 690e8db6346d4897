"""The ``spoton`` command-line client against the real gateway."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spoton.cli import main
from spoton.launcher import Stack
from tests.conftest import ADMIN_KEY


def test_start_follow_list_and_errors(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--url", stack.gateway_url, "--api-key", ADMIN_KEY]
    assert main([*url, "start", "demo", "--cameras", "cam1,cam3", "--max-steps", "6", "--follow"]) == 0
    out = capsys.readouterr().out.splitlines()
    sid = out[0].strip()
    steps = [line for line in out if line.startswith("step ")]
    assert len(steps) == 6 and "people cam1:" in steps[0] and " cam3:" in steps[0]
    assert out[-1] == f"session {sid} finished after 6 steps"
    assert main([*url, "sessions"]) == 0
    listing = capsys.readouterr().out
    assert sid in listing and "finished" in listing
    assert main([*url, "stop", "nope"]) == 2
    assert "404 not_found" in capsys.readouterr().err
    assert main([*url, "start", "no-such-set"]) == 2
    assert main([*url, "follow", "nope"]) == 2
    assert "unknown session" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    exe = shutil.which("spoton", path=str(Path(sys.executable).parent))
    assert exe, "pip install -e . installs the `spoton` command"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "follow" in out and "sessions" in out
