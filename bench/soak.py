"""Soak: a looping demo session for a while, memory and speed sampled every minute: ``python bench/soak.py``.

Starts the six services (embedded PostgreSQL unless DATABASE_URL is set), runs one session over the demo cameras
with ``loop: true`` for ``--minutes``, samples each service's RSS and the session's steps/s every ``--every-s``
seconds, and reports the slope of RSS per service (MiB per minute, least squares over the second half, after
warm-up) and of steps/s. Memory is flat when every slope is within ``--max-slope-mib`` (default 1 MiB/min).
Writes ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from spoton.db import resolve_database_url  # noqa: E402
from spoton.demo.generate import DEFAULT_OUT, generate  # noqa: E402
from spoton.launcher import local_auth, start_stack  # noqa: E402


def rss_mib(pid: int) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def slope_per_min(t_s: list[float], values: list[float]) -> float:
    """Least-squares slope over the second half of the samples, units per minute."""
    half = len(t_s) // 2
    if len(t_s) - half < 2:
        return float("nan")
    return float(np.polyfit(np.array(t_s[half:]) / 60.0, np.array(values[half:]), 1)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--every-s", type=float, default=60.0)
    p.add_argument("--cameras", default="cam1,cam2,cam3,cam4")
    p.add_argument("--max-slope-mib", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "soak.json")
    a = p.parse_args()
    if not (DEFAULT_OUT / "demo.yaml").exists():
        generate(DEFAULT_OUT)
    db = resolve_database_url(os.environ.get("DATABASE_URL", ""))
    stack = start_stack(REPO / ".spoton" / "soak-logs", db, DEFAULT_OUT, extra_env=local_auth())
    samples: list[dict] = []
    try:
        body = {"video_set": "demo", "cameras": a.cameras.split(","), "options": {"loop": True}}
        sid = httpx.post(f"{stack.gateway_url}/api/v1/sessions/", json=body, headers=stack.headers, timeout=30).json()[
            "session_id"
        ]
        start, last_steps, last_t = time.monotonic(), 0, time.monotonic()
        while (elapsed := time.monotonic() - start) < a.minutes * 60:
            time.sleep(min(a.every_s, max(0.0, a.minutes * 60 - elapsed)))
            summary = httpx.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", headers=stack.headers, timeout=30).json()
            now = time.monotonic()
            health = httpx.get(f"{stack.gateway_url}/health", timeout=30).json()
            sample = {
                "t_s": round(now - start, 1),
                "steps": summary["steps"],
                "steps_per_s": round((summary["steps"] - last_steps) / (now - last_t), 3),
                "status": summary["status"],
                "rss_mib": {k: round(rss_mib(proc.pid), 1) for k, proc in stack.procs.items()},
                "history_pending": (health.get("history") or {}).get("rows_pending"),
            }
            last_steps, last_t = summary["steps"], now
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            if summary["status"] != "running":
                break
        httpx.delete(f"{stack.gateway_url}/api/v1/sessions/{sid}", headers=stack.headers, timeout=30)
    finally:
        stack.stop()
    t = [s["t_s"] for s in samples]
    slopes = {k: round(slope_per_min(t, [s["rss_mib"][k] for s in samples]), 3) for k in samples[0]["rss_mib"]}
    result = {
        "minutes": a.minutes,
        "samples": samples,
        "rss_slope_mib_per_min": slopes,
        "steps_per_s_slope_per_min": round(slope_per_min(t, [s["steps_per_s"] for s in samples]), 4),
        "mean_steps_per_s": round(float(np.mean([s["steps_per_s"] for s in samples])), 3),
        "flat": all(abs(v) <= a.max_slope_mib for v in slopes.values()),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    main()
