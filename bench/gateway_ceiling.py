"""The ceiling of one gateway process: its CPU per camera-frame for 4, 8 and 16 cameras, and what limits it:
``python bench/gateway_ceiling.py --cameras 4,8,16 --steps 40``.

Starts the five stage services (as bench/e2e.py does), then for each camera count a fresh gateway and one session
over a video set of that many cameras (the four demo cameras repeated, each copy its own camera and tracker). The
gateway's process CPU (user + system) over the session, divided by the camera-frames it carried, is the figure a
capacity plan needs: one gateway on one core carries at most 1000 / (CPU ms per camera-frame) camera-frames/s,
whatever the other services cost (they scale out: DESIGN §8). CPU is split into the event loop (the main thread:
gRPC messages, step results, WebSocket and history) and the other threads (the reader's decoding, JPEG encoding
and flow thumbnails, gRPC's own threads), from psutil's per-thread times.

``--profile N`` runs one more session of N cameras with the gateway under cProfile (CPU time of its event loop
thread, on Python's asyncio loop: ``PROFILED``) and prints the functions that take its time. ``--schedule`` sets
the detection schedule (bench/e2e.py's specs); the detector is the detection service's default (``DETECTOR_*``).
Writes ``bench/results/gateway_ceiling.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.e2e import record, schedule_options  # noqa: E402
from spoton.db import resolve_database_url  # noqa: E402
from spoton.demo.generate import DEFAULT_OUT, generate  # noqa: E402
from spoton.launcher import SERVICES, Stack, local_auth, start_stack  # noqa: E402


def write_repeated_set(demo_dir: Path, n: int) -> str:
    """A video set of ``n`` cameras: the demo's four repeated (``cam1``, ..., ``cam1-2``, ...); its name."""
    doc = yaml.safe_load((demo_dir / "demo.yaml").read_text())
    cams, k = doc["cameras"], len(doc["cameras"])
    doc["cameras"] = [dict(cams[i % k], id=f"{cams[i % k]['id']}-{i // k + 1}") for i in range(n)]
    doc["name"] = f"ceiling{n}"
    (demo_dir / f"ceiling{n}.yaml").write_text(yaml.safe_dump(doc))
    return doc["name"]


# The profiled gateway: cProfile on CPU time (not wall time: waiting is not cost), and the event loop of Python's
# asyncio instead of uvloop, whose C loop hides the callbacks it runs from cProfile (everything then shows as
# asyncio.run). SIGINT ends it: uvicorn re-raises the signal after its graceful shutdown, and KeyboardInterrupt
# still reaches the finally that writes the file.
PROFILED = """
import cProfile, sys, time
import uvicorn.config
uvicorn.config.LOOP_FACTORIES["auto"] = uvicorn.config.LOOP_FACTORIES["asyncio"]
from gateway.app import main
profile = cProfile.Profile(time.process_time)
profile.enable()
try:
    main()
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
"""


def start_gateway(stack: Stack, profile: Path | None) -> subprocess.Popen:
    """The gateway process (``PROFILED`` when ``profile``), up on return."""
    cmd = [sys.executable, *(["-c", PROFILED, str(profile)] if profile else ["-m", "gateway.server"])]
    with open(stack.log_dir / "gateway.log", "ab") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=stack.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack.procs["gateway"] = proc
    stack.wait_healthy()
    return proc


def stop_gateway(stack: Stack, profiled: bool) -> None:
    """SIGTERM; SIGINT when profiled (see ``PROFILED``)."""
    proc = stack.procs.pop("gateway")
    proc.send_signal(signal.SIGINT if profiled else signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def thread_cpu(proc: psutil.Process) -> tuple[float, float]:
    """(main thread, other threads) CPU seconds of a process."""
    main = other = 0.0
    for t in proc.threads():
        if t.id == proc.pid:
            main += t.user_time + t.system_time
        else:
            other += t.user_time + t.system_time
    return main, other


def run(stack: Stack, video_set: str, n: int, steps: int, options: dict, profile: Path | None) -> dict:
    proc = psutil.Process(start_gateway(stack, profile).pid)
    try:
        before = thread_cpu(proc)
        body = {"video_set": video_set, "options": {"max_steps": steps, **options}}
        t0 = time.perf_counter()
        r = httpx.post(f"{stack.gateway_url}/api/v1/sessions/", json=body, headers=stack.headers, timeout=60)
        r.raise_for_status()
        sid = r.json()["session_id"]
        asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}", stack.headers))
        wall = time.perf_counter() - t0
        after = thread_cpu(proc)
        summary = httpx.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", headers=stack.headers, timeout=30).json()
    finally:
        stop_gateway(stack, profile is not None)
    frames = summary["steps"] * n
    main_s, other_s = after[0] - before[0], after[1] - before[1]
    ms = (main_s + other_s) * 1000 / max(frames, 1)
    return {
        "cameras": n,
        "steps": summary["steps"],
        "status": summary["status"],
        "camera_frames": frames,
        "wall_s": round(wall, 1),
        "camera_frames_per_s_this_run": round(frames / wall, 2),
        "gateway_cpu_ms_per_camera_frame": round(ms, 2),
        "event_loop_cpu_ms_per_camera_frame": round(main_s * 1000 / max(frames, 1), 2),
        "other_threads_cpu_ms_per_camera_frame": round(other_s * 1000 / max(frames, 1), 2),
        "ceiling_camera_frames_per_s_one_core": round(1000 / ms, 1) if ms else None,
        "profiled": profile is not None,
    }


def top_functions(profile: Path, n: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(profile), stream=out)
    stats.sort_stats("tottime").print_stats(n)
    stats.sort_stats("cumulative").print_stats(n)
    return out.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cameras", default="4,8,16")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--schedule", default="every", help="detection schedule spec, as bench/e2e.py --schedules")
    p.add_argument("--profile", type=int, default=16, help="camera count of the profiled session (0 = none)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gateway_ceiling.json")
    a = p.parse_args()
    if not (DEFAULT_OUT / "demo.yaml").exists():
        generate(DEFAULT_OUT)
    counts = [int(v) for v in a.cameras.split(",") if v.strip()]
    sets = {n: write_repeated_set(DEFAULT_OUT, n) for n in {*counts, *([a.profile] if a.profile else [])}}
    db = resolve_database_url(os.environ.get("DATABASE_URL", ""))
    env = local_auth() | {"MAX_CAMERAS_PER_SESSION": str(max(sets))}
    stack = start_stack(REPO / ".spoton" / "ceiling-logs", db, DEFAULT_OUT, extra_env=env, only=SERVICES)
    options = schedule_options(a.schedule)
    results: dict = {"schedule": a.schedule, "cpus": os.cpu_count(), "runs": []}
    try:
        for n in counts:
            results["runs"].append(run(stack, sets[n], n, a.steps, options, None))
            print(json.dumps(results["runs"][-1]), flush=True)
        if a.profile:
            prof = REPO / "build" / f"gateway-{a.profile}cams.prof"
            prof.parent.mkdir(parents=True, exist_ok=True)
            results["profiled_run"] = run(stack, sets[a.profile], a.profile, a.steps, options, prof)
            results["profile_top"] = top_functions(prof)
            print(json.dumps(results["profiled_run"]))
            print(results["profile_top"])
    finally:
        stack.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))
    print("| cameras | gateway CPU ms per camera-frame (event loop + other threads) | ceiling on one core, cf/s |")
    print("|---|---|---|")
    for r in results["runs"]:
        loop, other = r["event_loop_cpu_ms_per_camera_frame"], r["other_threads_cpu_ms_per_camera_frame"]
        print(
            f"| {r['cameras']} | {r['gateway_cpu_ms_per_camera_frame']:.1f} ({loop:.1f} + {other:.1f}) "
            f"| {r['ceiling_camera_frames_per_s_one_core']} |"
        )


if __name__ == "__main__":
    main()
