"""End-to-end throughput and accuracy through every service: ``python bench/e2e.py``.

Starts the six services as local processes (embedded PostgreSQL unless DATABASE_URL is set), runs a demo session
over 1 and 4 cameras (``--cameras 1,4``), records the WebSocket step messages, scores them with the kit, and
reports steps/s, camera-frames/s, per-stage milliseconds and the scores. Writes ``bench/results/e2e.json``.
``--steps N`` limits each run (0 = the whole video); CI uses short windows, the README the full run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import websockets

from spoton.db import resolve_database_url
from spoton.demo.data import gt_path
from spoton.demo.generate import DEFAULT_OUT, generate
from spoton.evaluation import ground_truth_from_mot, score_run
from spoton.launcher import REPO, start_stack

ALL_CAMERAS = ["cam1", "cam2", "cam3", "cam4"]


async def record(url: str) -> list[dict]:
    out = []
    async with websockets.connect(url, max_size=None) as ws:
        async for raw in ws:
            out.append(json.loads(raw))
            if out[-1]["type"] == "session_ended":
                return out
    return out


def run_session(stack, cameras: list[str], steps: int, options: dict) -> tuple[list[dict], dict, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    r = httpx.post(
        f"{stack.gateway_url}/api/v1/sessions/",
        json={"video_set": "demo", "cameras": cameras, "options": {"max_steps": steps, **options}},
        timeout=30,
    )
    r.raise_for_status()
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"))
    wall = time.perf_counter() - t0
    return messages, httpx.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json(), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cameras", default="1,4", help="camera counts to run")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--tracker", default="")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "e2e.json")
    a = p.parse_args()
    if not (DEFAULT_OUT / "demo.yaml").exists():
        generate(DEFAULT_OUT)
    db = resolve_database_url(os.environ.get("DATABASE_URL", ""))
    stack = start_stack(REPO / ".spoton" / "bench-logs", db, DEFAULT_OUT)
    gt = ground_truth_from_mot({c: DEFAULT_OUT / "gt" / f"{c}.txt" for c in ALL_CAMERAS}) if gt_path() else None
    results = []
    try:
        for n in (int(v) for v in a.cameras.split(",")):
            cams = ALL_CAMERAS[:n] if n > 1 else ["cam3"]
            options = {"tracker": a.tracker} if a.tracker else {}
            messages, summary, wall = run_session(stack, cams, a.steps, options)
            steps = summary["steps"]
            entry = {
                "cameras": cams,
                "steps": steps,
                "wall_s": wall,
                "steps_per_s": steps / wall,
                "camera_frames_per_s": steps * len(cams) / wall,
                "stage_ms": summary["stage_ms"],
                "status": summary["status"],
            }
            if gt is not None:
                scores = score_run({c: gt[c] for c in cams}, messages)
                entry["per_camera"] = {
                    c: {k: s[k] for k in ("mota", "idf1", "num_switches", "recall", "precision", "floor_median_m")}
                    for c, s in scores["cameras"].items()
                }
                entry["multi_camera"] = scores["multi_camera"]
            results.append(entry)
            print(json.dumps(entry, indent=1), flush=True)
    finally:
        stack.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
