"""The cost of durable history per step: ``python -m bench.history_bench --database-url URL``.

Feeds the gateway's ``HistoryWriter`` synthetic steps (``--cameras`` x ``--tracks`` track points each) and, every
``--steps-per-flush`` steps (one flush interval), seals and commits them, as the flush loop does; once with the spool
off (memory only) and once with it on (each batch written and fsynced to ``--spool-dir`` before the commit, deleted
after), alternating over ``--rounds`` rounds in the same process so machine load hits both alike. Reports, per step,
the hot-path cost (``add_rows``, what the pipeline waits for), the background cost (seal + spool + commit), and the
spool's own share (seal alone). Writes ``bench/results/history_bench.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from gateway.history import HistoryWriter
from gateway.rows import TrackPoint
from gateway.schema import migrate

RESULTS = Path(__file__).resolve().parent / "results"


def step_rows(session_id: str, step: int, cameras: int, tracks: int) -> list[TrackPoint]:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=step / 10)
    return [
        TrackPoint(t, session_id, step, f"cam{c}", step, k, k + 1, [10.0, 20.0, 60.0, 180.0], 0.87, 1.25, 3.5)
        for c in range(cameras)
        for k in range(tracks)
    ]


async def run_variant(url: str, spool: Path | None, args: argparse.Namespace) -> dict[str, float]:
    """One pass: seconds per step on the hot path, in the background, and for the seal (spool write) alone."""
    sid = f"bench-{uuid.uuid4().hex[:8]}"
    writer = HistoryWriter(url, spool_dir=spool)
    steps = [step_rows(sid, s, args.cameras, args.tracks) for s in range(args.steps)]
    hot = background = seal = 0.0
    for s, rows in enumerate(steps, 1):
        t0 = time.perf_counter()
        writer.add_rows(rows)
        hot += time.perf_counter() - t0
        if s % args.steps_per_flush == 0 or s == len(steps):
            t0 = time.perf_counter()
            await writer.seal()
            t1 = time.perf_counter()
            await writer.flush()
            t2 = time.perf_counter()
            seal += t1 - t0
            background += t2 - t0
    await writer.close()
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (sid,)).fetchone()[0]
        conn.execute("DELETE FROM track_points WHERE session_id = %s", (sid,))
        conn.execute("DELETE FROM persons WHERE session_id = %s", (sid,))
    assert count == sum(len(r) for r in steps), count
    n = len(steps)
    return {"hot_us": hot / n * 1e6, "background_us": background / n * 1e6, "seal_us": seal / n * 1e6}


async def main(args: argparse.Namespace) -> dict:
    migrate(args.database_url)
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(dir=args.spool_dir) as tmp:
        for r in range(args.rounds):
            for variant in ("off", "on") if r % 2 == 0 else ("on", "off"):
                spool = Path(tmp) / f"r{r}" if variant == "on" else None
                results[variant].append(await run_variant(args.database_url, spool, args))
    summary = {v: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for v, runs in results.items()}
    summary["cost_per_step_us"] = summary["on"]["background_us"] - summary["off"]["background_us"]
    summary["params"] = {k: v for k, v in vars(args).items() if k != "database_url"}
    return summary


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--spool-dir", default=None, help="where the spool lives (default: the system temp dir)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--tracks", type=int, default=10)
    p.add_argument("--steps-per-flush", type=int, default=5, help="steps per flush interval (10 fps x 0.5 s)")
    p.add_argument("--rounds", type=int, default=6)
    out = asyncio.run(main(p.parse_args()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "history_bench.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
