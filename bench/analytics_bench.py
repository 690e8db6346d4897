"""Analytics speed on a big history: ``python bench/analytics_bench.py``.

Loads a synthetic session of ``--people`` people walking for ``--hours`` hours at ``--hz`` samples per second
(60 x 24 h x 2 Hz = 10.4 million track points) with COPY into a throwaway database (``--database-url``, default:
a ``spoton_bench`` database on the local server), then times every analytics query over one hour and over the whole
day. Writes ``bench/results/analytics_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

from analytics_svc.queries import HistoryQueries, Range
from gateway.events import ZoneEventDetector
from spoton.db import apply_migrations
from spoton.launcher import REPO
from spoton.rollups import REFRESH_SQL, refresh_params
from spoton.videoset import parse_video_set

START = datetime(2026, 3, 2, tzinfo=UTC)
DOC = {
    "name": "bench",
    "floor": {"width_m": 40.0, "height_m": 30.0, "origin_m": [0.0, 0.0]},
    "cameras": [{"id": f"cam{i}", "source": "x"} for i in range(1, 5)],
    "zones": [
        {"id": "entrance", "polygon": [[0, 0], [8, 0], [8, 8], [0, 8]]},
        {"id": "till", "polygon": [[25, 10], [35, 10], [35, 20], [25, 20]]},
    ],
    "lines": [{"id": "door", "a": [10, 0], "b": [10, 30]}],
}


def ensure_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def load(url: str, sid: str, people: int, hours: float, hz: float, seed: int = 7) -> int:
    """People random-walk on the floor; every sample is one camera's track point. Returns rows written."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * hz)
    dt = 1.0 / hz
    pos = rng.uniform([1, 1], [39, 29], (people, 2))
    vel = rng.normal(0, 0.8, (people, 2))
    det = ZoneEventDetector(parse_video_set(DOC, Path("bench.yaml")))
    rows = 0
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'bench', %s, %s, 'finished', %s)",
            (sid, [c["id"] for c in DOC["cameras"]], json.dumps(DOC), START),
        )
        events = []
        with conn.cursor().copy(
            "COPY track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
            "confidence, floor_x_m, floor_y_m) FROM STDIN"
        ) as copy:
            for i in range(n):
                vel = 0.9 * vel + rng.normal(0, 0.25, vel.shape)
                pos = np.clip(pos + vel * dt, 0.2, [39.8, 29.8])
                t = START + timedelta(seconds=i * dt)
                cams = (pos[:, 0] // 20).astype(int) + 2 * (pos[:, 1] // 15).astype(int) + 1
                for g in range(people):
                    copy.write_row(
                        (
                            t,
                            sid,
                            i,
                            f"cam{cams[g]}",
                            i + 1,
                            g + 1,
                            g + 1,
                            [0, 0, 10, 30],
                            0.8,
                            float(pos[g, 0]),
                            float(pos[g, 1]),
                        )
                    )
                rows += people
                ts_ns = int(t.timestamp() * 1e9)
                events += [
                    (t, sid, e.zone_id, e.global_id, e.kind)
                    for e in det.step(ts_ns, {g + 1: pos[g] for g in range(people)})
                ]
        with conn.cursor().copy("COPY zone_events (time, session_id, zone_id, global_id, kind) FROM STDIN") as copy:
            for row in events:
                copy.write_row(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default="")
    p.add_argument("--people", type=int, default=60)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--hz", type=float, default=2.0)
    p.add_argument("--raw", action="store_true", help="also time the raw-table queries (no rollups)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "analytics_bench.json")
    a = p.parse_args()
    url = a.database_url or ensure_database("postgresql://postgres@127.0.0.1:5432/postgres", "spoton_bench")
    apply_migrations(url, REPO / "gateway" / "migrations", "gateway")
    apply_migrations(url, REPO / "mapping_svc" / "migrations", "mapping")
    sid = f"bench-{a.people}p-{a.hours:g}h-{a.hz:g}hz"
    with psycopg.connect(url) as conn:
        loaded = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (sid,)).fetchone()[0]
    if not loaded:
        t0 = time.perf_counter()
        loaded = load(url, sid, a.people, a.hours, a.hz)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE track_points")
        print(f"loaded {loaded:,} track points in {time.perf_counter() - t0:.0f} s", flush=True)
    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT 1 FROM presence_zone_1m WHERE session_id = %s LIMIT 1", (sid,)).fetchone():
            t0 = time.perf_counter()
            params = refresh_params(sid, START, (0.0, 0.0), START, START + timedelta(hours=a.hours))
            for sql in REFRESH_SQL:
                conn.execute(sql, params)
            conn.commit()
            print(f"built the per-minute rollups in {time.perf_counter() - t0:.0f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        # What autovacuum does on a live system: fresh visibility maps let the rollups be read by index.
        for table in ("track_points", "presence_1m", "steps_1m", "presence_cells_1m", "presence_zone_1m"):
            conn.execute(f"VACUUM ANALYZE {table}")
    hour = Range(
        sid, int((START + timedelta(hours=12)).timestamp() * 1e9), int((START + timedelta(hours=13)).timestamp() * 1e9)
    )
    day = Range(sid)
    queries = {
        "occupancy (60 s buckets)": lambda q, r: q.occupancy(r, 60.0),
        "occupancy per zone (60 s)": lambda q, r: q.occupancy(r, 60.0, "zone"),
        "people count": lambda q, r: q.people_count(r),
        "dwell": lambda q, r: q.dwell(r),
        "heatmap (0.5 m)": lambda q, r: q.heatmap(r, 0.5),
        "zone events": lambda q, r: q.zone_events(r),
        "line crossings": lambda q, r: q.line_crossings(r),
        "trajectory (one person)": lambda q, r: q.trajectories(r, 7, 0.5),
        "summary": lambda q, r: q.summary(r),
    }
    results = []
    with psycopg.connect(url) as conn:
        for rollups in (True, False) if a.raw else (True,):
            q = HistoryQueries(conn, use_rollups=rollups)
            for name, fn in queries.items():
                row = {"query": name, "rollups": rollups}
                for label, r in (("hour", hour), ("day", day)):
                    fn(q, r)  # warm the cache
                    t0 = time.perf_counter()
                    fn(q, r)
                    row[f"{label}_ms"] = (time.perf_counter() - t0) * 1000
                results.append(row)
                print(
                    f"{name:28s} {'rollups' if rollups else 'raw    '} hour {row['hour_ms']:8.1f} ms   "
                    f"day {row['day_ms']:9.1f} ms",
                    flush=True,
                )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"track_points": loaded, "results": results}, indent=2))


if __name__ == "__main__":
    main()
