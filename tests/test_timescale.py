"""TimescaleDB for real, against ``SPOTON_TEST_TIMESCALE_URL`` (a server with ``timescaledb`` preloaded).

On a fresh database the services start in the launcher's order (reid and mapping before the gateway, the order that
used to fail); the gateway's tables become hypertables with the configured compression and retention policies; the
analytics give the answers plain PostgreSQL gives on the same synthetic history, compressed chunks and a late row
into one included; purge and retention delete compressed history. Without the variable these tests skip: the one
kind of test allowed to skip in CI, which has no TimescaleDB.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from analytics_svc.queries import HistoryQueries, Range, dt_to_ns, ns_to_dt
from gateway.config import GatewaySettings
from gateway.events import ZoneEventDetector
from gateway.schema import migrate
from spoton.launcher import SERVICES, Stack, start_stack
from spoton.rollups import REFRESH_SQL, minute_floor, refresh_params
from spoton.videoset import parse_video_set
from tests.conftest import AUTH_ENV, fresh_database, gwapi

TS_URL_ENV = "SPOTON_TEST_TIMESCALE_URL"
pytestmark = [
    pytest.mark.timescale,
    pytest.mark.skipif(
        not os.environ.get(TS_URL_ENV),
        reason=f"{TS_URL_ENV} is not set (a PostgreSQL server with timescaledb preloaded)",
    ),
]
ORDER = ("detection", "tracking", "reid", "mapping", "analytics", "gateway")  # the launcher's
SETTINGS = {"HISTORY_COMPRESS_AFTER_DAYS": "2", "HISTORY_RETENTION_DAYS": "30", "HISTORY_CHUNK_DAYS": "1"}
NO_METRICS = {f"{n.upper()}_SVC_METRICS_PORT": "-1" for n in SERVICES}  # started one by one: no ports to race for
HYPERTABLES = {"track_points", "zone_events", "alerts"}

# Synthetic history: 5 people random-walking for 3 days at one sample per 20 s (3 one-day chunks and a part),
# media start off the minute; a second session to show purge leaves others alone.
NOW = datetime.now(UTC).replace(microsecond=0)
MEDIA_START = NOW - timedelta(days=3, seconds=-17.3)
DOC = {
    "name": "ts",
    "floor": {"width_m": 20.0, "height_m": 15.0, "origin_m": [0.0, 0.0]},
    "cameras": [{"id": f"cam{i}", "source": "x"} for i in (1, 2)],
    "zones": [{"id": "door", "polygon": [[0, 0], [6, 0], [6, 6], [0, 6]]}],
    "lines": [{"id": "mid", "a": [10, 0], "b": [10, 15]}],
}


@pytest.fixture(scope="module")
def ts_database() -> Iterator[str]:
    with fresh_database(os.environ[TS_URL_ENV], "spoton_ts") as url:
        yield url


@pytest.fixture(scope="module")
def pg_database(database_url: str) -> Iterator[str]:
    with fresh_database(database_url, "spoton_pg") as url:
        migrate(url, GatewaySettings())
        yield url


@pytest.fixture(scope="module")
def ts_stack(tmp_path_factory: pytest.TempPathFactory, ts_database: str, demo_dir: Path) -> Iterator[Stack]:
    """Every service on the fresh TimescaleDB database, started one at a time in the launcher's order."""
    stack = start_stack(
        tmp_path_factory.mktemp("ts-logs"), ts_database, demo_dir, extra_env=SETTINGS | NO_METRICS | AUTH_ENV, only=()
    )
    try:
        for name in ORDER:
            stack.start_service(name)
            stack.wait_healthy()
        yield stack
    finally:
        stack.stop()


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_fresh_timescaledb_database_every_service_starts(ts_stack: Stack, ts_database: str) -> None:
    gateway_log = (ts_stack.log_dir / "gateway.log").read_text()
    assert "history storage: TimescaleDB" in gateway_log
    owners = {o for (o,) in rows(ts_database, "SELECT DISTINCT owner FROM schema_migrations")}
    assert owners == {"gateway", "mapping", "reid"}
    assert gwapi.get(ts_stack.gateway_url + "/health", timeout=10).json()["status"] == "healthy"


def test_hypertables_compression_and_retention_as_configured(ts_stack: Stack, ts_database: str) -> None:
    def state() -> tuple[set, dict, dict]:
        tables = {t for (t,) in rows(ts_database, "SELECT hypertable_name FROM timescaledb_information.hypertables")}
        segmentby = dict(
            rows(
                ts_database,
                "SELECT hypertable_name, string_agg(attname, ', ' ORDER BY segmentby_column_index) "
                "FROM timescaledb_information.compression_settings WHERE segmentby_column_index IS NOT NULL GROUP BY 1",
            )
        )
        jobs = {
            (proc, table): (job, after)
            for job, proc, table, after in rows(
                ts_database,
                "SELECT job_id, proc_name, hypertable_name, "
                "coalesce(config->>'compress_after', config->>'drop_after')::interval::text "
                "FROM timescaledb_information.jobs WHERE proc_name IN ('policy_compression', 'policy_retention')",
            )
        }
        return tables, segmentby, jobs

    tables, segmentby, jobs = state()
    assert tables == HYPERTABLES
    assert segmentby == {"track_points": "session_id, camera_id", "zone_events": "session_id", "alerts": "session_id"}
    assert {k: v[1] for k, v in jobs.items()} == {
        **{("policy_compression", t): "2 days" for t in HYPERTABLES},
        **{("policy_retention", t): "30 days" for t in HYPERTABLES},
    }
    # No continuous aggregate: the writer's rollups stay plain tables on both databases.
    assert rows(ts_database, "SELECT count(*) FROM timescaledb_information.continuous_aggregates") == [(0,)]
    assert rows(ts_database, "SELECT relkind FROM pg_class WHERE relname = 'presence_1m'") == [("r",)]

    # A restart with other settings changes the policies; one with the same settings changes nothing.
    changed = GatewaySettings(history_compress_after_days=5, history_retention_days=0)
    try:
        assert migrate(ts_database, changed) == []
        _, _, jobs2 = state()
        assert {k: v[1] for k, v in jobs2.items()} == {("policy_compression", t): "5 days" for t in HYPERTABLES}
        migrate(ts_database, changed)
        assert state()[2] == jobs2
    finally:
        migrate(ts_database, GatewaySettings(**{k.lower(): float(v) for k, v in SETTINGS.items()}))
    assert {k: v[1] for k, v in state()[2].items()} == {k: v[1] for k, v in jobs.items()}


def synthetic_history(seed: int = 3) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Track points, zone events and alerts of 5 people walking for 3 days (rows as the history writer writes)."""
    rng = np.random.default_rng(seed)
    video_set = parse_video_set(DOC, Path("ts.yaml"))
    detector = ZoneEventDetector(video_set)
    pos = rng.uniform([1, 1], [19, 14], (5, 2))
    vel = rng.normal(0, 0.5, (5, 2))
    points, events, alerts = [], [], []
    for i in range(3 * 86400 // 20):
        vel = 0.8 * vel + rng.normal(0, 0.3, vel.shape)
        pos = np.clip(pos + vel * 2.0, 0.2, [19.8, 14.8])
        t = MEDIA_START + timedelta(seconds=20 * i)
        present = [g for g in range(5) if (i // 90 + g) % 4]  # people leave and come back
        for g in present:
            cam = "cam1" if pos[g, 0] < 10 else "cam2"
            x, y = float(pos[g, 0]), float(pos[g, 1])
            points.append((t, "", i, cam, i + 1, 100 * g + i // 90, g + 1, [1.0, 2.0, 30.0, 90.0], 0.7, x, y))
            if 9 < x < 11:  # both cameras see the middle of the floor
                other = "cam2" if cam == "cam1" else "cam1"
                points.append((t, "", i, other, i + 1, 1000 + 100 * g + i // 90, g + 1, [0, 0, 5, 9], 0.4, x, y))
        ts_ns = dt_to_ns(t)
        for e in detector.step(ts_ns, {g + 1: pos[g] for g in present}):
            events.append((t, "", e.zone_id, e.global_id, e.kind))
            if e.kind == "enter" and e.zone_id == "door":
                alerts.append((t, "", "door", "occupancy_above", "door", e.global_id, 1.0, "someone at the door"))
    return points, events, alerts


def load(url: str, session_id: str, history: tuple[list[tuple], list[tuple], list[tuple]]) -> None:
    """Write one session's rows with COPY, as the history writer does, and build its rollups."""
    points, events, alerts = history
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'ts', %s, %s, 'finished', %s)",
            (session_id, ["cam1", "cam2"], json.dumps(DOC), MEDIA_START),
        )
        for table, columns, data in (
            (
                "track_points",
                "time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
                "confidence, floor_x_m, floor_y_m",
                points,
            ),
            ("zone_events", "time, session_id, zone_id, global_id, kind", events),
            ("alerts", "time, session_id, rule_id, kind, target, global_id, value, message", alerts),
        ):
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row((row[0], session_id, *row[2:]))
        refresh(conn, session_id, MEDIA_START, points[-1][0])


def refresh(conn: psycopg.Connection, session_id: str, first: datetime, last: datetime) -> None:
    params = refresh_params(session_id, MEDIA_START, (0.0, 0.0), first, last)
    for sql in REFRESH_SQL:
        conn.execute(sql, params)
    conn.commit()


@pytest.fixture(scope="module")
def histories(ts_stack: Stack, ts_database: str, pg_database: str) -> tuple[str, str]:
    """Sessions ``keep`` and ``gone`` in both databases; on TimescaleDB the compression policy's job then ran."""
    history = synthetic_history()
    for url in (ts_database, pg_database):
        for sid in ("keep", "gone"):
            load(url, sid, history)
    with psycopg.connect(ts_database, autocommit=True) as conn:
        for (job,) in conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        ).fetchall():
            conn.execute("CALL run_job(%s)", (job,))
    return ts_database, pg_database


def chunk_states(url: str, table: str = "track_points") -> list[bool]:
    return [
        c
        for (c,) in rows(
            url,
            "SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = %s ORDER BY range_start",
            (table,),
        )
    ]


def normalised(value: object) -> object:
    """Answers as comparable plain data; floats to 9 significant digits (sums over chunks may add in another
    order)."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalised(v) for v in value]
    if isinstance(value, np.ndarray):
        return normalised(value.tolist())
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.9g}") if math.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def compressed_hour(url: str) -> int:
    """Start (Unix ns, on a rollup minute) of an hour that ends inside the oldest, compressed chunk."""
    (end,) = rows(url, "SELECT min(range_end) FROM timescaledb_information.chunks WHERE is_compressed")[0]
    return dt_to_ns(max(MEDIA_START, minute_floor(end - timedelta(minutes=90), MEDIA_START)))


def answers(url: str, timescale: bool, session_id: str, hour_ns: int) -> dict:
    """Every analytics question over the whole session, an hour of compressed chunk from ``hour_ns`` (on the
    minute and off it) and the uncompressed last hour, from the rollups and from the raw tables."""
    hour, last = 3600 * 10**9, dt_to_ns(MEDIA_START) + 70 * 3600 * 10**9
    ranges = {
        "all": Range(session_id),
        "compressed hour": Range(session_id, hour_ns, hour_ns + hour),
        "compressed, off the minute": Range(session_id, hour_ns + 7 * 10**9, hour_ns + hour - 13 * 10**9),
        "last hour": Range(session_id, last, last + hour),
    }
    out: dict = {}
    with psycopg.connect(url) as conn:
        for rollups in (True, False):
            q = HistoryQueries(conn, timescale=timescale, use_rollups=rollups)
            for label, r in ranges.items():
                key = f"{label}, {'rollups' if rollups else 'raw'}"
                out[key] = {
                    **{f"occupancy {b} s": q.occupancy(r, b) for b in (7.0, 60.0, 90.0)},
                    "occupancy per camera": q.occupancy(r, 60.0, "camera"),
                    "occupancy per zone": q.occupancy(r, 60.0, "zone"),
                    "people": q.people_count(r),
                    "dwell": q.dwell(r),
                    "heatmap": q.heatmap(r, 0.5),
                    "zone events": q.zone_events(r),
                    "line crossings": q.line_crossings(r),
                    "trajectory": q.trajectories(r, 2, 0.5),
                    "summary": q.summary(r),
                    "export": b"".join(q.export(r, "csv")),
                }
    return normalised(out)  # type: ignore[return-value]


def test_analytics_on_timescaledb_equal_plain_postgresql(histories: tuple[str, str]) -> None:
    ts, pg = histories
    states = chunk_states(ts)
    assert len(states) >= 4 and any(states) and not all(states), states
    assert any(chunk_states(ts, "zone_events")) and any(chunk_states(ts, "alerts"))
    hour = compressed_hour(ts)
    expected = answers(pg, False, "keep", hour)
    assert expected["all, raw"]["summary"]["track_points"] > 30_000
    assert expected["compressed hour, raw"]["summary"]["track_points"] > 500
    assert answers(ts, True, "keep", hour) == expected

    # The dwell bounds (kept by the trigger on zone_events, on every chunk of the hypertable) are the same.
    bounds = "SELECT bucket, first_enter, last_exit FROM zone_visit_bounds WHERE session_id = 'keep' ORDER BY 1"
    assert rows(ts, bounds) == rows(pg, bounds) and len(rows(pg, bounds)) > 100

    # A late row into a compressed chunk (a person seen again by the second camera) and a late visit to the door
    # (its exit written first, as a replayed spool may), then the same answers and bounds.
    late = ns_to_dt(hour) + timedelta(minutes=30)
    for url in (ts, pg):
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
                "confidence, floor_x_m, floor_y_m) VALUES (%s, 'keep', 0, 'cam2', 0, 999, 9, '{0,0,1,1}', 0.5, 3, 3)",
                (late,),
            )
            for t, kind in ((late + timedelta(minutes=45), "exit"), (late - timedelta(minutes=20), "enter")):
                conn.execute(
                    "INSERT INTO zone_events (time, session_id, zone_id, global_id, kind) "
                    "VALUES (%s, 'keep', 'door', 9, %s)",
                    (t, kind),
                )
            refresh(conn, "keep", late, late)
    assert chunk_states(ts) == states
    expected = answers(pg, False, "keep", hour)
    assert 9 in expected["all, raw"]["people"]
    assert {"global_id": 9, "zone_id": "door", "dwell_s": 50 * 60.0} in expected["compressed hour, raw"]["dwell"]
    assert answers(ts, True, "keep", hour) == expected
    assert rows(ts, bounds) == rows(pg, bounds)


def test_purge_deletes_compressed_history(ts_stack: Stack, histories: tuple[str, str]) -> None:
    ts, _ = histories
    count = "SELECT count(*) FROM {} WHERE session_id = %s"
    before = {t: rows(ts, count.format(t), ("keep",))[0][0] for t in sorted(HYPERTABLES)}
    gone = {t: rows(ts, count.format(t), ("gone",))[0][0] for t in sorted(HYPERTABLES)}
    assert all(gone.values()), gone
    r = gwapi.delete(f"{ts_stack.gateway_url}/api/v1/sessions/gone", params={"purge": "true"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["purged_rows"] > sum(gone.values())
    for table in sorted(HYPERTABLES):
        assert rows(ts, count.format(table), ("gone",)) == [(0,)], table
        assert rows(ts, count.format(table), ("keep",))[0][0] == before[table], table
    assert rows(ts, count.format("zone_visit_bounds"), ("gone",)) == [(0,)]
    assert rows(ts, count.format("zone_visit_bounds"), ("keep",))[0][0] > 100
    assert any(chunk_states(ts))


def test_retention_policy_drops_old_compressed_chunks(ts_stack: Stack, ts_database: str) -> None:
    old = NOW - timedelta(days=40)
    with psycopg.connect(ts_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
            "confidence) SELECT %s + s * INTERVAL '1 minute', 'old', s, 'cam1', s, 1, 1, '{0,0,1,1}', 0.5 "
            "FROM generate_series(0, 99) s",
            (old,),
        )
        conn.execute(
            "SELECT compress_chunk(c) FROM show_chunks('track_points', older_than => now() - INTERVAL '39 days') c"
        )
        assert conn.execute("SELECT count(*) FROM track_points WHERE session_id = 'old'").fetchone() == (100,)
        (job,) = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_name = 'track_points'"
        ).fetchone()
        conn.execute("CALL run_job(%s)", (job,))
        assert conn.execute("SELECT count(*) FROM track_points WHERE session_id = 'old'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM track_points WHERE session_id = 'keep'").fetchone()[0] > 0
