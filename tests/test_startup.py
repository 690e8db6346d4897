"""Starting on plain PostgreSQL: any order on an empty database, a failed warm-up ends the process, and migrations
that do not depend on the database's encoding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from spoton.launcher import REPO, SERVICES, free_port, start_stack
from tests.conftest import fresh_database

# Services started one after another hold their ports a while before binding; no metrics ports to race for.
NO_METRICS = {f"{n.upper()}_SVC_METRICS_PORT": "-1" for n in SERVICES}
REVERSED = ("gateway", "analytics", "mapping", "reid", "tracking", "detection")  # the launcher's order, reversed


def test_services_start_in_reverse_order_on_a_fresh_database(tmp_path: Path, database_url: str, demo_dir: Path) -> None:
    with fresh_database(database_url, "spoton_fresh") as url:
        stack = start_stack(tmp_path, url, demo_dir, extra_env=NO_METRICS, only=())
        try:
            for name in REVERSED:
                stack.start_service(name)
                stack.wait_healthy()
            assert "history storage: plain PostgreSQL" in (tmp_path / "gateway.log").read_text()
            with psycopg.connect(url) as conn:
                owners = {o for (o,) in conn.execute("SELECT DISTINCT owner FROM schema_migrations")}
                key = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'track_points_key'").fetchone()
            assert owners == {"gateway", "mapping", "reid"}
            assert key == (
                "CREATE UNIQUE INDEX track_points_key ON public.track_points "
                'USING btree (session_id, camera_id, track_id, "time")',
            )
            assert httpx.get(stack.gateway_url + "/health", timeout=10).json()["status"] == "healthy"
        finally:
            stack.stop()


@pytest.mark.parametrize("module", ["mapping_svc.server", "reid_svc.server", "analytics_svc.server", "gateway.server"])
def test_a_failed_warm_up_is_logged_and_ends_the_process(module: str) -> None:
    env = os.environ | {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",  # nothing listens on port 1
        "LOG_JSON": "false",
        **{f"{n}_SVC_PORT": str(free_port()) for n in ("MAPPING", "REID", "ANALYTICS")},
        "GATEWAY_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", module], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stderr[-2000:]
    assert "Traceback" in done.stderr and "127.0.0.1" in done.stderr, done.stderr[-2000:]


def test_migrations_are_ascii() -> None:
    """SQL files the services apply read the same whatever the database's encoding."""
    files = sorted(REPO.glob("*/migrations/*.sql"))
    assert len(files) >= 7
    for path in files:
        assert path.read_bytes().isascii(), path
