"""Analytics speed on a big history, and whether it depends on the history before the range asked:
``python -m bench.analytics_bench``.

Loads two synthetic sessions with COPY into a throwaway database (``--database-url``, created when missing; default
a ``spoton_bench`` database on the local server):

* ``1d``: ``--people`` people random-walking on a 40 m x 30 m floor for one day at ``--hz`` samples per second, each
  sample one camera's track point (60 x 24 h x 2 Hz = 10.4 million points), zone events from the walk;
* ``30d``: the very same day after ``--history-days`` days of the same kind of walk (zone events at the full rate,
  track points thinned to ``--history-hz``: an always-on site's month). Each history day's people leave at its end
  and new global ids come the next day, as at a site whose visitors come and go (``--same-ids``: the same ids every
  day, as before).

Zone events are loaded with their trigger off and the dwell bounds built once per session from them
(``zone_visit_bounds_rebuild``, the same bounds the trigger keeps row by row: gateway migration 0010).

Then times every analytics query over one hour (12:00-13:00 of that day) and over the day, on both sessions (best of
``--repeat`` after one warm-up), and counts the shared-buffer blocks one call touches (PostgreSQL's own statistics:
the work done, unaffected by how loaded the machine is), with the working tree's queries and, with ``--baseline
REF``, also with ``analytics_svc/queries.py`` as it was at git revision REF, in the same process so machine load hits
both alike. The two sessions' answers must be equal (same day, same range). Writes
``bench/results/analytics_bench.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely
from scipy.signal import lfilter

from analytics_svc.queries import HistoryQueries, Range
from gateway.events import ZoneEventDetector
from gateway.schema import migrate
from spoton.db import apply_migrations, timescaledb_installed
from spoton.launcher import REPO
from spoton.rollups import REFRESH_SQL, refresh_params
from spoton.timeutil import dt_to_ns
from spoton.videoset import parse_video_set

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # the day both sessions share
FLOOR_LO, FLOOR_HI = np.array([0.2, 0.2]), np.array([39.8, 29.8])
DOOR_X_M = 10.0  # the line "door" runs from (10, 0) to (10, 30)
DOC = {
    "name": "bench",
    "floor": {"width_m": 40.0, "height_m": 30.0, "origin_m": [0.0, 0.0]},
    "cameras": [{"id": f"cam{i}", "source": "x"} for i in range(1, 5)],
    "zones": [
        {"id": "entrance", "polygon": [[0, 0], [8, 0], [8, 8], [0, 8]]},
        {"id": "till", "polygon": [[25, 10], [35, 10], [35, 20], [25, 20]]},
    ],
    "lines": [{"id": "door", "a": [DOOR_X_M, 0], "b": [DOOR_X_M, 30]}],
}


def queries(people: int) -> dict[str, Callable]:
    """Each timed query: name -> fn(HistoryQueries, Range)."""
    return {
        "occupancy (60 s buckets)": lambda q, r: q.occupancy(r, 60.0),
        "occupancy per zone (60 s)": lambda q, r: q.occupancy(r, 60.0, "zone"),
        "people count": lambda q, r: q.people_count(r),
        "dwell": lambda q, r: q.dwell(r),
        "heatmap (0.5 m)": lambda q, r: q.heatmap(r, 0.5),
        "zone events": lambda q, r: q.zone_events(r),
        "line crossings": lambda q, r: q.line_crossings(r),
        "trajectory (one person)": lambda q, r: q.trajectories(r, min(7, people), 0.5),
        "summary": lambda q, r: q.summary(r),
    }


def ensure_database(url: str) -> str:
    """Create the database ``url`` names when the server lacks it."""
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return url


def walk(people: int, hz: float, steps: int, seed: int, chunk: int = 3600) -> Iterator[np.ndarray]:
    """Positions (k, people, 2) in metres, ``chunk`` steps at a time: velocity is AR(1) (0.9, noise 0.25 m/s), the
    path reflects off the walls."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(FLOOR_LO + 1, FLOOR_HI - 1, (people, 2))  # unfolded position
    vel = rng.normal(0, 0.8, (people, 2))
    span = FLOOR_HI - FLOOR_LO
    for start in range(0, steps, chunk):
        k = min(chunk, steps - start)
        v = lfilter([1.0], [1.0, -0.9], rng.normal(0, 0.25, (k, people, 2)), axis=0, zi=0.9 * vel[None])[0]
        path = u + np.cumsum(v / hz, axis=0)
        vel, u = v[-1], path[-1]
        m = np.mod(path - FLOOR_LO, 2 * span)
        yield FLOOR_LO + np.where(m > span, 2 * span - m, m)


class Events:
    """The gateway's zone and line events for people seen at every step (what ZoneEventDetector writes for them),
    vectorised over a chunk of steps. ``check_events`` compares it with the detector itself."""

    def __init__(self, people: int, id_base: int = 0) -> None:
        self.id_base = id_base  # global id = id_base + 1 + the person's index
        self.zones = [(z["id"], shapely.Polygon(z["polygon"])) for z in DOC["zones"]]
        self.inside = np.zeros((len(self.zones), people), bool)
        self.last: np.ndarray | None = None

    def step(self, t_ns: np.ndarray, pos: np.ndarray) -> list[tuple[int, str, int, str]]:
        """(k,) step times and (k, people, 2) positions -> (time ns, zone or line, global id, kind) rows."""
        out = []
        for i, (zid, poly) in enumerate(self.zones):
            now = shapely.contains_xy(poly, pos[..., 0], pos[..., 1])
            before = np.vstack([self.inside[i][None], now[:-1]])
            for kind, hits in (("enter", now & ~before), ("exit", before & ~now)):
                s, g = np.nonzero(hits)
                out += [(int(t_ns[a]), zid, self.id_base + int(b) + 1, kind) for a, b in zip(s, g, strict=True)]
            self.inside[i] = now[-1]
        x = pos[..., 0]
        if self.last is None:  # nobody seen before this chunk: no crossing into its first step
            prev, cur, t_cross = x[:-1], x[1:], t_ns[1:]
        else:
            prev, cur, t_cross = np.vstack([self.last[None], x[:-1]]), x, t_ns
        for kind, hits in (
            ("cross_forward", (prev < DOOR_X_M) & (cur > DOOR_X_M)),
            ("cross_backward", (prev > DOOR_X_M) & (cur < DOOR_X_M)),
        ):
            s, g = np.nonzero(hits)
            out += [(int(t_cross[a]), "door", self.id_base + int(b) + 1, kind) for a, b in zip(s, g, strict=True)]
        self.last = x[-1]
        return out

    def finish(self, t_ns: int) -> list[tuple[int, str, int, str]]:
        """Everyone leaves the zones they are in (the detector's ``finish``, at the last step)."""
        out = [
            (t_ns, zid, self.id_base + int(g) + 1, "exit")
            for i, (zid, _) in enumerate(self.zones)
            for g in np.flatnonzero(self.inside[i])
        ]
        self.inside[:] = False
        self.last = None
        return out


def check_events(people: int, hz: float) -> None:
    """The vectorised events equal ZoneEventDetector's on a sample of the walk (else the bench measures fiction)."""
    pos = np.concatenate(list(walk(people, hz, 1200, seed=99, chunk=500)))
    t_ns = np.arange(len(pos), dtype=np.int64) * int(1e9 / hz)
    det = ZoneEventDetector(parse_video_set(DOC, Path("bench.yaml")))
    want = [
        (e.timestamp_ns, e.zone_id, e.global_id, e.kind)
        for i in range(len(pos))
        for e in det.step(int(t_ns[i]), {g + 1: pos[i, g] for g in range(people)})
    ]
    want += [(e.timestamp_ns, e.zone_id, e.global_id, e.kind) for e in det.finish()]
    ev = Events(people)
    got = []
    for a in range(0, len(pos), 500):
        got += ev.step(t_ns[a : a + 500], pos[a : a + 500])
    got += ev.finish(int(t_ns[-1]))
    if sorted(got) != sorted(want) or not want:
        raise SystemExit(f"synthetic events differ from ZoneEventDetector's ({len(got)} vs {len(want)})")


def load_day(
    conn: psycopg.Connection,
    sid: str,
    first: datetime,
    people: int,
    hz: float,
    days: float,
    seed: int,
    stride: int,
    id_base: int = 0,
) -> tuple[int, int]:
    """Write ``days`` of walk from ``first``: every ``stride``-th step's track points, every zone event; global ids
    from ``id_base + 1``. Returns (track points, zone events) written."""
    steps, chunk = int(days * 86400 * hz), int(3600 * hz)
    ev = Events(people, id_base)
    step_ns, first_ns = round(1e9 / hz), dt_to_ns(first)
    points = events = 0
    gids = np.arange(1, people + 1) + id_base
    for c, pos in enumerate(walk(people, hz, steps, seed, chunk)):
        step = c * chunk + np.arange(len(pos))
        t_ns = first_ns + step * step_ns
        rows = ev.step(t_ns, pos)
        if c * chunk + len(pos) == steps:
            rows += ev.finish(int(t_ns[-1]))
        events += len(rows)
        e = pd.DataFrame(rows, columns=["t", "zone_id", "global_id", "kind"])
        e.insert(1, "session_id", sid)
        e["t"] = pd.to_datetime(e["t"], utc=True)
        with conn.cursor().copy(
            "COPY zone_events (time, session_id, zone_id, global_id, kind) FROM STDIN (FORMAT csv)"
        ) as copy:
            copy.write(e.to_csv(index=False, header=False))
        keep = step % stride == 0
        pos, step, t_ns = pos[keep], step[keep], t_ns[keep]
        if not len(step):
            continue
        k = len(step)
        cams = (pos[..., 0] // 20).astype(int) + 2 * (pos[..., 1] // 15).astype(int) + 1
        tp = pd.DataFrame(
            {
                "time": pd.to_datetime(np.repeat(t_ns, people), utc=True),
                "session_id": sid,
                "step": np.repeat(step, people),
                "camera_id": np.char.add("cam", cams.ravel().astype(str)),
                "frame_index": np.repeat(step + 1, people),
                "track_id": np.tile(gids, k),
                "global_id": np.tile(gids, k),
                "bbox": "{0,0,10,30}",
                "confidence": 0.8,
                "floor_x_m": pos[..., 0].ravel(),
                "floor_y_m": pos[..., 1].ravel(),
            }
        )
        with conn.cursor().copy(
            "COPY track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
            "confidence, floor_x_m, floor_y_m) FROM STDIN (FORMAT csv)"
        ) as copy:
            buf = io.StringIO()
            tp.to_csv(buf, index=False, header=False)
            copy.write(buf.getvalue())
        points += len(tp)
    return points, events


def load_session(url: str, sid: str, a: argparse.Namespace, history_days: int) -> dict:
    """Load one session (skipped when already there); the shared day always comes from the same seed."""
    start = DAY0 - timedelta(days=history_days)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM track_points WHERE session_id = %(s)s), "
            "(SELECT count(*) FROM zone_events WHERE session_id = %(s)s)",
            {"s": sid},
        ).fetchone()
        if row[0]:
            return {"session": sid, "track_points": row[0], "zone_events": row[1], "loaded_s": None}
        t0 = time.perf_counter()
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'bench', %s, %s, 'finished', %s)",
            (sid, [c["id"] for c in DOC["cameras"]], json.dumps(DOC), start),
        )
        conn.commit()
        # The zone events' trigger off (superuser only): their dwell bounds are built once, below.
        conn.execute("SET session_replication_role = replica")
        points = events = 0
        stride = max(1, round(a.hz / a.history_hz))
        if history_days and a.same_ids:
            p, e = load_day(conn, sid, start, a.people, a.hz, history_days, a.seed + 1, stride)
            points, events = points + p, events + e
        for day in range(history_days if not a.same_ids else 0):
            first, ids = start + timedelta(days=day), (day + 1) * a.people
            p, e = load_day(conn, sid, first, a.people, a.hz, 1, a.seed + 1 + day, stride, ids)
            points, events = points + p, events + e
        p, e = load_day(conn, sid, DAY0, a.people, a.hz, 1, a.seed, 1)
        points, events = points + p, events + e
        conn.commit()
        conn.execute("RESET session_replication_role")
        loaded = time.perf_counter() - t0
        print(f"{sid}: loaded {points:,} track points and {events:,} zone events in {loaded:.0f} s", flush=True)
        t0 = time.perf_counter()
        conn.execute("SELECT zone_visit_bounds_rebuild(%s)", (sid,))
        build_rollups(conn, sid, start, history_days + 1)
        print(f"{sid}: built the dwell bounds and per-minute rollups in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"session": sid, "track_points": points, "zone_events": events, "loaded_s": loaded}


def hour_ratios(url: str, sessions: dict, span: tuple[int, int], people: int, rounds: int, long: str) -> dict:
    """Per query, the long session's hour CPU over the 1-day session's, the two timed in ``rounds`` alternating
    rounds of five calls (best of all): the ratio of queries of a few ms, with the machine's drift shared."""
    out = {}
    with psycopg.connect(url) as conn:
        timescale = timescaledb_installed(conn)
        for name, fn in queries(people).items():
            q, best = HistoryQueries(conn, timescale=timescale), {}
            for _ in range(rounds):
                for label in ("1d", long):
                    r = Range(sessions[label]["session"], *span)
                    cpu = timed(conn, lambda: fn(q, r), 5)[1]  # noqa: B023
                    best[label] = min(best.get(label, float("inf")), cpu if cpu is not None else float("inf"))
            out[name] = round(best[long] / best["1d"], 2)
            print(f"{name:27s} hour CPU ms 1d {best['1d']:.1f}, {long} {best[long]:.1f}: ratio {out[name]}", flush=True)
    return out


def build_rollups(conn: psycopg.Connection, sid: str, start: datetime, days: int) -> None:
    """The session's rollups built one day at a time, in time order, as the history writer keeps them (a few
    minutes at a time): rows of one hour lie together in the table. One pass over all days would write each hour's
    cells in hash order among the whole month's, and an hour's heatmap would read a table page per cell."""
    for day in range(days):
        first = start + timedelta(days=day)
        params = refresh_params(sid, start, (0.0, 0.0), first, first + timedelta(days=1) - timedelta(microseconds=1))
        for sql in REFRESH_SQL:
            conn.execute(sql, params)
        conn.commit()


def baseline_queries(ref: str) -> type:
    """``HistoryQueries`` from ``analytics_svc/queries.py`` at git revision ``ref``."""
    src = subprocess.run(
        ["git", "show", f"{ref}:analytics_svc/queries.py"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_queries.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("baseline_queries", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.HistoryQueries


def buffers(conn: psycopg.Connection) -> int:
    """Shared-buffer block accesses (hits + reads) of this database so far: the work a query did, whatever the
    machine's load (the benchmark database has no other clients)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.commit()  # our pending statistics are flushed once the session is idle
    conn.execute("SELECT pg_stat_clear_snapshot()")
    n = conn.execute("SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()")
    out = n.fetchone()[0]
    conn.commit()
    return out


def cpu_ns(conn: psycopg.Connection) -> int | None:
    """CPU time so far of this process and of the connection's server process (``/proc/PID/schedstat``, ns: the
    database on this machine), or None when the server's process is not readable here."""
    try:
        with open(f"/proc/{conn.info.backend_pid}/schedstat") as f:
            return int(f.read().split()[0]) + time.process_time_ns()
    except OSError:
        return None


def timed(conn: psycopg.Connection, fn: Callable, repeat: int) -> tuple[float, float | None, int, object]:
    """Best of ``repeat`` runs after one warm-up: wall ms, CPU ms (client + server process, whatever else loads the
    machine; None for a remote server), the blocks one run touches, and the answer."""
    answer = fn()
    blocks = []
    for _ in range(2):  # the fewer: a background worker (autovacuum) in the database only ever adds
        before = buffers(conn)
        fn()
        conn.rollback()
        blocks.append(buffers(conn) - before)
    runs, cpus = [], []
    for _ in range(repeat):
        c0, t0 = cpu_ns(conn), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
        c1 = cpu_ns(conn)
        cpus.append((c1 - c0) / 1e6 if c0 is not None and c1 is not None else None)
        conn.rollback()
    return min(runs), min(cpus) if None not in cpus else None, min(blocks), answer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/spoton_bench")
    p.add_argument("--people", type=int, default=60)
    p.add_argument("--hz", type=float, default=2.0)
    p.add_argument("--history-days", type=int, default=29, help="days before the shared day in the long session")
    p.add_argument("--history-hz", type=float, default=0.1, help="track points per second kept in those days")
    p.add_argument("--same-ids", action="store_true", help="the same global ids every history day")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--raw", action="store_true", help="also time the raw-table queries (no rollups)")
    p.add_argument("--baseline", default="", help="also time analytics_svc/queries.py at this git revision")
    p.add_argument("--load-only", action="store_true", help="load the sessions and build their rollups, time nothing")
    p.add_argument(
        "--hour-rounds", type=int, default=4, help="alternating rounds of the interleaved hour ratio (0 = none)"
    )
    p.add_argument(
        "--rebuild-rollups", action="store_true", help="rebuild loaded sessions' rollups day by day (older loads)"
    )
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "analytics_bench.json")
    a = p.parse_args()
    url = ensure_database(a.database_url)
    migrate(url)  # the gateway's tables, hypertables when the server has TimescaleDB (as the gateway makes them)
    apply_migrations(url, REPO / "mapping_svc" / "migrations", "mapping")
    apply_migrations(url, REPO / "reid_svc" / "migrations", "reid")
    check_events(min(a.people, 10), a.hz)
    base = f"bench-{a.people}p-{a.hz:g}hz-s{a.seed}"
    long = f"{a.history_days + 1}d"
    ids = "same" if a.same_ids else "fresh"
    sessions = {
        "1d": load_session(url, f"{base}-1d", a, 0),
        long: load_session(url, f"{base}-{a.history_days + 1}d-{a.history_hz:g}hz-{ids}", a, a.history_days),
    }
    if a.rebuild_rollups:
        with psycopg.connect(url) as conn:
            for label, info in sessions.items():
                t0 = time.perf_counter()
                days = a.history_days + 1 if label != "1d" else 1
                build_rollups(conn, info["session"], DAY0 - timedelta(days=days - 1), days)
                print(f"{info['session']}: rebuilt the rollups day by day in {time.perf_counter() - t0:.0f} s")
    if a.load_only:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        # What autovacuum does on a live system: fresh visibility maps let the rollups be read by index.
        for table in (
            "track_points",
            "zone_events",
            "presence_1m",
            "steps_1m",
            "presence_cells_1m",
            "presence_cells_1h",
            "presence_zone_1m",
            "zone_visit_bounds",
        ):
            conn.execute(f"VACUUM ANALYZE {table}")
    ns = dt_to_ns
    spans = {
        "hour": (ns(DAY0 + timedelta(hours=12)), ns(DAY0 + timedelta(hours=13))),
        "day": (ns(DAY0), ns(DAY0 + timedelta(days=1))),
    }
    with psycopg.connect(url) as conn:
        timescale = timescaledb_installed(conn)
    print(f"database: {'TimescaleDB' if timescale else 'plain PostgreSQL'}")
    impls: dict[str, Callable] = {"new": lambda conn: HistoryQueries(conn, timescale=timescale)}
    if a.raw:
        impls["new, no rollups"] = lambda conn: HistoryQueries(conn, timescale=timescale, use_rollups=False)
    if a.baseline:
        impls[f"at {a.baseline}"] = baseline_queries(a.baseline)
    results, mismatches = [], []
    with psycopg.connect(url) as conn:
        for name, fn in queries(a.people).items():
            for impl, cls in impls.items():
                q = cls(conn)
                row = {"query": name, "impl": impl}
                answers = {}
                for label, info in sessions.items():
                    for span, (lo, hi) in spans.items():
                        ms, cpu_ms, blocks, answers[(label, span)] = timed(
                            conn,
                            lambda: fn(q, Range(info["session"], lo, hi)),  # noqa: B023
                            a.repeat,
                        )
                        row[f"{label} {span} ms"] = round(ms, 1)
                        row[f"{label} {span} cpu ms"] = round(cpu_ms, 1) if cpu_ms is not None else None
                        row[f"{label} {span} blocks"] = blocks
                for span in spans:
                    if answers[("1d", span)] != answers[(long, span)]:
                        mismatches.append(f"{name} ({impl}, {span})")
                row[f"{long}/1d hour"] = round(row[f"{long} hour ms"] / row["1d hour ms"], 2)
                row[f"{long}/1d hour blocks"] = round(row[f"{long} hour blocks"] / max(row["1d hour blocks"], 1), 3)
                if row["1d hour cpu ms"] and row[f"{long} hour cpu ms"] is not None:
                    row[f"{long}/1d hour cpu"] = round(row[f"{long} hour cpu ms"] / row["1d hour cpu ms"], 2)
                results.append(row)
                print(
                    f"{name:27s} {impl:14s} "
                    + "  ".join(f"{k} {v:>8}" for k, v in row.items() if k not in ("query", "impl")),
                    flush=True,
                )
    print("sessions answer alike" if not mismatches else f"answers differ between the sessions: {mismatches}")
    ratios = hour_ratios(url, sessions, spans["hour"], a.people, a.hour_rounds, long) if a.hour_rounds else {}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(a).items()},
                "sessions": sessions,
                "results": results,
                "mismatches": mismatches,
                "median_hour_ratio_new": statistics.median(r[f"{long}/1d hour"] for r in results if r["impl"] == "new"),
                "interleaved_hour_cpu_ratio": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
