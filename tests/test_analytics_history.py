"""Analytics over a longer synthetic history: dwell's bounded SQL against the old whole-history Python pairing,
exports and trajectories with merge corrections applied, export streamed in pieces. Real PostgreSQL; the gRPC tests
run the real AnalyticsServicer on a loopback port.

The history: 9 people random-walk for 20 minutes at 1 Hz on a 10 m x 10 m floor with two overlapping zones and a
line, dropping out now and then (the gateway's ZoneEventDetector writes the events, exits included); person 20
enters A at 10 s and leaves at 1000 s with no event between; person 43 enters A three days before the walk and
leaves at 500 s; person 41 enters A two days before and never leaves, merged into 42, who leaves A at 150 s (a
visit only the merge makes, which no per-id bound covers); a few odd sequences the detector never writes (two enters
in a row, an exit without an enter). Merges: 3 -> 5 -> 2 (a chain), 7 -> 1 and 41 -> 42. A second session reuses
the same global ids so any leak across sessions shows.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import psycopg
import pytest

from analytics_svc.queries import HistoryQueries, Range
from analytics_svc.servicer import AnalyticsServicer
from gateway.events import ZoneEventDetector
from spoton.db import apply_migrations
from spoton.launcher import REPO
from spoton.rollups import REFRESH_SQL, refresh_params
from spoton.v1 import analytics_pb2, analytics_pb2_grpc
from spoton.videoset import parse_video_set

START = datetime(2026, 2, 1, tzinfo=UTC)
STEPS = 1200
DOC = {
    "name": "long",
    "floor": {"width_m": 10.0, "height_m": 10.0, "origin_m": [0.0, 0.0]},
    "cameras": [{"id": "camA", "source": "a.mp4"}, {"id": "camB", "source": "b.mp4"}],
    "zones": [
        {"id": "A", "polygon": [[0, 0], [5, 0], [5, 5], [0, 5]]},
        {"id": "B", "polygon": [[4, 3], [10, 3], [10, 8], [4, 8]]},
    ],
    "lines": [{"id": "L", "a": [5, 0], "b": [5, 10]}],
}
MERGES = [(3, 5), (5, 2), (7, 1), (41, 42)]  # applied in this order: from -> into
RESOLVED = {3: 2, 5: 2, 7: 1, 41: 42}


def at(t_s: float) -> datetime:
    return START + timedelta(seconds=t_s)


def ns(t_s: float) -> int:
    return int(round((START - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() + t_s, 6) * 1_000_000) * 1000


def walk(seed: int) -> tuple[list[tuple], list[tuple]]:
    """Track point rows and zone event rows (time, zone, gid, kind) of the random walk."""
    rng = np.random.default_rng(seed)
    people = 9
    pos = rng.uniform(0.5, 9.5, (people, 2))
    det = ZoneEventDetector(parse_video_set(DOC, Path("long.yaml")))
    points, events = [], []
    away = np.zeros(people, int)
    for step in range(STEPS):
        pos = np.clip(pos + rng.normal(0, 0.6, pos.shape), 0.1, 9.9)
        away = np.where(away > 0, away - 1, np.where(rng.random(people) < 0.01, rng.integers(1, 6, people), 0))
        seen = {g + 1: pos[g] for g in range(people) if away[g] == 0}
        for gid, (x, y) in seen.items():
            for cam in ("camA", "camB") if gid % 2 else ("camA",):
                points.append((at(step), step, cam, step, gid, gid, [x, y, x + 1, y + 2], 0.9, x, y))
        events += det.step(ns(step), seen)
    events += det.finish()
    rows = [
        (START + timedelta(microseconds=(e.timestamp_ns - ns(0)) // 1000), e.zone_id, e.global_id, e.kind)
        for e in events
    ]
    # Person 20: one long visit with nothing inside it; odd sequences the detector never writes.
    rows += [(at(10), "A", 20, "enter"), (at(1000), "A", 20, "exit")]
    # Visits that began days before: one person's own, and one closed by the id it was merged into.
    rows += [(at(-3 * 86400), "A", 43, "enter"), (at(500), "A", 43, "exit")]
    rows += [(at(-2 * 86400), "A", 41, "enter"), (at(150), "A", 42, "exit")]
    rows += [(at(400), "B", 30, "enter"), (at(420), "B", 30, "enter"), (at(450.25), "B", 30, "exit")]
    rows += [(at(460), "B", 30, "exit"), (at(470), "A", 30, "exit")]
    # Merged people inside the same zone at the same instants (ties are ordered by the id as written).
    rows += [
        (at(600), "A", 3, "enter"),
        (at(600), "A", 5, "enter"),
        (at(610), "A", 5, "exit"),
        (at(630), "A", 3, "exit"),
    ]
    # One event per (zone, person, kind, instant): the key zone_events has (a repeat is a replayed write).
    return points, list(dict.fromkeys(rows))


def write_session(conn: psycopg.Connection, sid: str, seed: int, merges: list[tuple[int, int]]) -> None:
    points, events = walk(seed)
    conn.execute(
        "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
        "VALUES (%s, 'long', %s, %s, 'finished', %s)",
        (sid, ["camA", "camB"], json.dumps(DOC), START),
    )
    with conn.cursor().copy(
        "COPY track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, confidence, "
        "floor_x_m, floor_y_m) FROM STDIN"
    ) as copy:
        for t, step, cam, frame, track, gid, bbox, conf, x, y in points:
            copy.write_row((t, sid, step, cam, frame, track, gid, bbox, conf, x, y))
    with conn.cursor().copy("COPY zone_events (time, session_id, zone_id, global_id, kind) FROM STDIN") as copy:
        for t, zone, gid, kind in events:
            copy.write_row((t, sid, zone, gid, kind))
    for src, dst in merges:
        conn.execute(
            "INSERT INTO identity_corrections (session_id, kind, detail) VALUES (%s, 'merge', %s)",
            (sid, json.dumps({"from": src, "into": dst})),
        )


@pytest.fixture(scope="module")
def long_history(database_url: str) -> str:
    apply_migrations(database_url, REPO / "gateway" / "migrations", "gateway")
    apply_migrations(database_url, REPO / "reid_svc" / "migrations", "reid")
    sid = f"long-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        write_session(conn, sid, seed=3, merges=MERGES)
        write_session(conn, sid + "-other", seed=4, merges=[(2, 9)])
    return sid


def reference_visits(events: list[tuple], zones: set[str]) -> list[tuple[int, str, int, int]]:
    """The implementation dwell replaced, kept as the reference: every event of the session, in (time, zone, id as
    written, kind) order, paired in Python; an enter opens (or re-opens) a visit, an exit closes the open one.
    Returns (person, zone, enter ns, exit ns) per visit."""
    open_at: dict[tuple[int, str], int] = {}
    visits = []
    for t_ns, zone, gid, kind in events:
        if zone not in zones:
            continue
        key = (RESOLVED.get(gid, gid), zone)
        if kind == "enter":
            open_at[key] = t_ns
        elif key in open_at:
            visits.append((*key, open_at.pop(key), t_ns))
    return visits


def reference_dwell(events: list[tuple], zones: set[str], lo: int, hi: int) -> dict[tuple[int, str], float]:
    """Seconds per (person, zone) of the reference visits clipped to [lo, hi)."""
    total: dict[tuple[int, str], float] = {}
    for gid, zone, enter, exit_ in reference_visits(events, zones):
        a, b = max(enter, lo), min(exit_, hi)
        if b > a:
            total[(gid, zone)] = total.get((gid, zone), 0.0) + (b - a) / 1e9
    return total


def session_events(conn: psycopg.Connection, sid: str) -> list[tuple]:
    rows = conn.execute(
        "SELECT time, zone_id, global_id, kind FROM zone_events WHERE session_id = %s AND kind IN ('enter', 'exit') "
        "ORDER BY time, zone_id, global_id, kind",
        (sid,),
    ).fetchall()
    return [(ns((t - START).total_seconds()), z, g, k) for t, z, g, k in rows]


RANGES = [
    (None, None),
    (100, 200),  # person 20 is inside A all along with no event in the range
    (150.5, 151.5),
    (0, 50),
    (300, None),
    (None, 250),
    (405, 455),  # cuts person 30's double enter
    (605, 620),  # inside the merged people's overlapping visits
    (450.25, 460),  # starts on an exit
    (1000, 1300),  # starts on person 20's exit
    (1190, 1250),  # runs past the end of the history
]


@pytest.mark.parametrize(("start_s", "end_s"), RANGES)
@pytest.mark.parametrize("zone_id", ["", "A", "B", "L"])
def test_dwell_matches_the_whole_history_pairing(database_url, long_history, start_s, end_s, zone_id) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(database_url) as conn:
        events = session_events(conn, long_history)
        got = HistoryQueries(conn).dwell(
            Range(long_history, ns(start_s) if start_s is not None else 0, ns(end_s) if end_s is not None else 0),
            zone_id,
        )
    zones = {"A", "B"} if not zone_id else {zone_id} & {"A", "B"}
    lo = ns(start_s) if start_s is not None else -(2**62)
    hi = ns(end_s) if end_s is not None else 2**62
    want = reference_dwell(events, zones, lo, hi)
    assert [(d["global_id"], d["zone_id"]) for d in got] == sorted(want)
    assert [d["dwell_s"] for d in got] == pytest.approx([want[k] for k in sorted(want)], abs=1e-6)
    assert not {3, 5, 7, 41} & {d["global_id"] for d in got}  # merged-away ids never show
    if (start_s, end_s, zone_id) == (100, 200, "A"):
        assert {"global_id": 20, "zone_id": "A", "dwell_s": 100.0} in got  # a visit spanning the whole range
        assert {"global_id": 43, "zone_id": "A", "dwell_s": 100.0} in got  # ... begun three days before it
        assert {"global_id": 42, "zone_id": "A", "dwell_s": 50.0} in got  # 41's enter closed by 42's exit
    if (start_s, end_s, zone_id) == (605, 620, "A"):
        assert {"global_id": 2, "zone_id": "A", "dwell_s": 5.0} in got  # 5 re-opened at 600 s, closed at 610 s


def test_the_ranges_cut_visits(database_url, long_history) -> None:  # type: ignore[no-untyped-def]
    """The ranges above cut visits open at their start and at their end (else the edge lookups go untested)."""
    with psycopg.connect(database_url) as conn:
        visits = reference_visits(session_events(conn, long_history), {"A", "B"})
        with pytest.raises(ValueError):
            HistoryQueries(conn).dwell(Range(long_history, ns(9), ns(2)))
    bounded = [(ns(a), ns(b)) for a, b in RANGES if a is not None and b is not None]
    assert sum(any(e < lo < x for _, _, e, x in visits) for lo, _ in bounded) >= 5
    assert sum(any(e < hi < x for _, _, e, x in visits) for _, hi in bounded) >= 5
    assert (20, "A", ns(10), ns(1000)) in visits
    assert (43, "A", ns(-3 * 86400), ns(500)) in visits and (42, "A", ns(-2 * 86400), ns(150)) in visits


def rebuild_changes(conn: psycopg.Connection, sid: str) -> int:
    """Bounds rows that rebuilding the session's visit bounds from all its events would widen or add (0: the trigger
    kept every visit covered); rolled back."""
    bounds = "SELECT * FROM zone_visit_bounds WHERE session_id = %s ORDER BY bucket"
    with conn.transaction(force_rollback=True):
        before = conn.execute(bounds, (sid,)).fetchall()
        conn.execute("SELECT zone_visit_bounds_rebuild(%s)", (sid,))
        after = conn.execute(bounds, (sid,)).fetchall()
    return len(set(after) - set(before))


def test_visit_bounds_kept_whatever_the_write_order(database_url, long_history) -> None:  # type: ignore[no-untyped-def]
    """Events written one at a time in shuffled order (late spool replays) keep every visit inside the bounds its
    buckets hold, so dwell still equals the whole-history pairing."""
    sid = f"shuffled-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT time, zone_id, global_id, kind FROM zone_events WHERE session_id = %s", (long_history,)
        ).fetchall()
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'long', %s, %s, 'finished', %s)",
            (sid, ["camA", "camB"], json.dumps(DOC), START),
        )
        for src, dst in MERGES:
            conn.execute(
                "INSERT INTO identity_corrections (session_id, kind, detail) VALUES (%s, 'merge', %s)",
                (sid, json.dumps({"from": src, "into": dst})),
            )
        order = np.random.default_rng(11).permutation(len(events))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO zone_events (time, session_id, zone_id, global_id, kind) VALUES (%s, %s, %s, %s, %s)",
                [(events[i][0], sid, *events[i][1:]) for i in order],
            )
        conn.commit()
        assert rebuild_changes(conn, long_history) == 0  # written by one COPY
        assert rebuild_changes(conn, sid) == 0
        buckets = conn.execute("SELECT count(*) FROM zone_visit_bounds WHERE session_id = %s", (sid,)).fetchone()[0]
        assert buckets == 3 * 24 * 6 + 2  # person 43's visit spans every 10 minutes from three days before to 500 s
        everything = session_events(conn, sid)
        for start_s, end_s in RANGES:
            r = Range(sid, ns(start_s) if start_s is not None else 0, ns(end_s) if end_s is not None else 0)
            got = {(d["global_id"], d["zone_id"]): d["dwell_s"] for d in HistoryQueries(conn).dwell(r)}
            lo = ns(start_s) if start_s is not None else -(2**62)
            hi = ns(end_s) if end_s is not None else 2**62
            assert got == pytest.approx(reference_dwell(everything, {"A", "B"}, lo, hi), abs=1e-6)
        conn.execute("DELETE FROM zone_events WHERE session_id = %s", (sid,))
        conn.execute("DELETE FROM sessions WHERE session_id = %s", (sid,))  # a purge
        assert conn.execute("SELECT count(*) FROM zone_visit_bounds WHERE session_id = %s", (sid,)).fetchone()[0] == 0


def zone_event_rows_read(conn: psycopg.Connection) -> int:
    """Rows of ``zone_events`` read so far in this transaction (fetched through an index or scanned); with index-only
    scans off, so that every row read through an index is counted."""
    conn.execute("SET LOCAL enable_indexonlyscan = off")
    return conn.execute(
        "SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'zone_events'"
    ).fetchone()[0]


def test_dwell_reads_the_range_not_the_history(database_url) -> None:  # type: ignore[no-untyped-def]
    """Ten days of short visits (a new person each, as at an always-on site) before the last hour: dwell over that
    hour reads the hour's events and the visits open at its ends, not the 11,520 events before it nor one probe per
    person ever seen."""
    apply_migrations(database_url, REPO / "gateway" / "migrations", "gateway")
    sid = f"aged-{uuid.uuid4().hex[:8]}"
    visits = [(at(-10 * 86400 + 300 * k), at(-10 * 86400 + 300 * k + 10)) for k in range(2880)]  # 10 days before
    visits += [(at(-20), at(30)), (at(100), at(160)), (at(3500), at(3700))]  # open at the start, inside, at the end
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'long', %s, %s, 'finished', %s)",
            (sid, ["camA"], json.dumps(DOC), at(-10 * 86400)),
        )
        with conn.cursor().copy("COPY zone_events (time, session_id, zone_id, global_id, kind) FROM STDIN") as copy:
            for k, (enter, exit_) in enumerate(visits):
                for zone in ("A", "B"):
                    copy.write_row((enter, sid, zone, k + 1, "enter"))
                    copy.write_row((exit_, sid, zone, k + 1, "exit"))
        conn.commit()
        before = zone_event_rows_read(conn)
        got = HistoryQueries(conn).dwell(Range(sid, ns(0), ns(3600)))
        read = zone_event_rows_read(conn) - before
    assert got == [
        {"global_id": 2881 + k, "zone_id": zone, "dwell_s": dwell_s}
        for k, dwell_s in enumerate((30.0, 60.0, 100.0))
        for zone in ("A", "B")
    ]
    assert 6 * 2 <= read <= 6 * 2 + 8  # the three visits' events in both zones, a few index probes besides


def test_summary_mean_dwell_follows_the_range(database_url, long_history) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(database_url) as conn:
        q = HistoryQueries(conn)
        r = Range(long_history, ns(120), ns(480))
        dwells = [d["dwell_s"] for d in q.dwell(r)]
        assert q.summary(r)["mean_dwell_s"] == pytest.approx(float(np.mean(dwells)))


def expected_ids(database_url: str, sid: str) -> list:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT global_id FROM track_points WHERE session_id = %s ORDER BY time, camera_id, track_id", (sid,)
        ).fetchall()
    return [RESOLVED.get(g, g) for (g,) in rows]


def test_export_resolves_merges_in_pieces(database_url, long_history) -> None:  # type: ignore[no-untyped-def]
    want = expected_ids(database_url, long_history)
    assert {3, 5, 7} & set(want) == set() and len(want) > 5000
    with psycopg.connect(database_url) as conn:
        q = HistoryQueries(conn)
        pieces = list(q.export(Range(long_history), "csv", rows_per_piece=1000))
        assert len(pieces) == -(-len(want) // 1000) + (len(want) % 1000 == 0)
        df = pd.read_csv(io.BytesIO(b"".join(pieces)))
        assert df["global_id"].tolist() == want
        assert list(df.columns)[-4:] == ["x1", "y1", "x2", "y2"]
        assert np.allclose(df["x1"], df["floor_x_m"], atol=1e-5)  # the walk wrote bbox = [x, y, x + 1, y + 2]
        parts = list(q.export(Range(long_history, ns(100), ns(700)), "parquet", rows_per_piece=1000))
        pq = pd.read_parquet(io.BytesIO(b"".join(parts)))
        assert len(parts) > 3
        sub = expected_ids_range(database_url, long_history, 100, 700)
        assert pq["global_id"].tolist() == sub and pq["time"].min() == pd.Timestamp(at(100))
        empty = pd.read_parquet(io.BytesIO(b"".join(q.export(Range(long_history, ns(5000), ns(6000)), "parquet"))))
        assert len(empty) == 0 and "global_id" in empty.columns
        with pytest.raises(ValueError):
            list(q.export(Range(long_history), "xlsx"))


def expected_ids_range(database_url: str, sid: str, start_s: float, end_s: float) -> list:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT global_id FROM track_points WHERE session_id = %s AND time >= %s AND time < %s "
            "ORDER BY time, camera_id, track_id",
            (sid, at(start_s), at(end_s)),
        ).fetchall()
    return [RESOLVED.get(g, g) for (g,) in rows]


async def _serve(database_url: str, calls) -> list:  # type: ignore[no-untyped-def]
    """Run the real AnalyticsServicer on a loopback port and make ``calls(stub)``."""
    server = grpc.aio.server()
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
        AnalyticsServicer(database_url, max_trajectory_points=5000), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            return await calls(analytics_pb2_grpc.AnalyticsServiceStub(channel))
    finally:
        await server.stop(None)


def test_export_and_trajectory_over_grpc(database_url, long_history) -> None:  # type: ignore[no-untyped-def]
    def span(start_s: float = 0, end_s: float = 0) -> analytics_pb2.TimeRange:
        return analytics_pb2.TimeRange(
            session_id=long_history, start_ns=ns(start_s) if start_s else 0, end_ns=ns(end_s) if end_s else 0
        )

    async def calls(stub):  # type: ignore[no-untyped-def]
        out = {}
        export = stub.Export(analytics_pb2.ExportRequest(range=span(), format=analytics_pb2.EXPORT_FORMAT_CSV))
        out["csv"] = b"".join([m.chunk async for m in export])
        person = await stub.Trajectory(analytics_pb2.TrajectoryRequest(range=span(), global_id=2, simplify_m=0.0))
        out["person"] = person.trajectories
        small = await stub.Trajectory(analytics_pb2.TrajectoryRequest(range=span(100, 160)))
        out["small"] = small.trajectories
        for name, request in (
            ("everyone", analytics_pb2.TrajectoryRequest(range=span())),
            ("merged_away", analytics_pb2.TrajectoryRequest(range=span(), global_id=5)),
        ):
            try:
                await stub.Trajectory(request)
            except grpc.aio.AioRpcError as exc:
                out[name] = (exc.code(), exc.details())
        try:
            async for _ in stub.Export(analytics_pb2.ExportRequest(range=analytics_pb2.TimeRange(session_id="nope"))):
                pass
        except grpc.aio.AioRpcError as exc:
            out["unknown"] = exc.code()
        return out

    out = asyncio.run(_serve(database_url, calls))
    assert pd.read_csv(io.BytesIO(out["csv"]))["global_id"].tolist() == expected_ids(database_url, long_history)
    # Person 2's path is 2's, 3's and 5's points (merged), cameras averaged per instant.
    with psycopg.connect(database_url) as conn:
        instants = conn.execute(
            "SELECT count(DISTINCT time) FROM track_points WHERE session_id = %s AND global_id IN (2, 3, 5)",
            (long_history,),
        ).fetchone()[0]
    (path,) = out["person"]
    assert path.global_id == 2 and 2 < len(path.points) <= instants
    assert path.points[0].timestamp_ns == ns(0) and path.length_m > 0
    assert sorted(t.global_id for t in out["small"]) == [1, 2, 4, 6, 8, 9]
    code, details = out["everyone"]
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "5000 floor points" in details
    assert out["merged_away"][0] == grpc.StatusCode.NOT_FOUND
    assert out["unknown"] == grpc.StatusCode.NOT_FOUND


INSERT_SESSION = (
    "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
    "VALUES (%s, 'long', %s, %s, 'finished', %s)"
)


def write_walkers(conn: psycopg.Connection, sid: str, rows) -> None:  # type: ignore[no-untyped-def]
    """A one-camera session whose ``rows`` are (seconds after START, person, floor x, floor y), one step each."""
    conn.execute(INSERT_SESSION, (sid, ["camA"], json.dumps(DOC), START))
    with conn.cursor().copy(
        "COPY track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
        "confidence, floor_x_m, floor_y_m) FROM STDIN"
    ) as copy:
        for k, (t, person, x, y) in enumerate(rows):
            copy.write_row((at(t), sid, k, "camA", k, person, person, [0, 0, 1, 1], 0.9, x, y))


def test_trajectory_reads_the_index_not_the_table(database_url) -> None:  # type: ignore[no-untyped-def]
    """One person's path among 40 interleaved people comes from the (session, person, time) index's leaves, which
    carry the floor point (gateway migration 0011): once the table is vacuumed (as autovacuum does), no table row is
    fetched. With the key-only index of 0001 every one of the person's 600 points was a table fetch."""
    apply_migrations(database_url, REPO / "gateway" / "migrations", "gateway")
    sid = f"crowd-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(5)
    with psycopg.connect(database_url, autocommit=True) as conn:
        points = [(step, person, *rng.uniform(0, 10, 2)) for step in range(600) for person in range(1, 41)]
        write_walkers(conn, sid, points)
        conn.execute("VACUUM (ANALYZE) track_points")
        with conn.transaction():
            got = HistoryQueries(conn).trajectories(Range(sid), 7, 0.0)
            fetched = conn.execute(
                "SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'track_points'"
            ).fetchone()[0]
    (path,) = got
    assert path["global_id"] == 7 and path["points"][0]["timestamp_ns"] == ns(0)
    assert path["points"][-1]["timestamp_ns"] == ns(599) and len(path["points"]) > 100  # a random walk keeps most
    assert fetched == 0


def test_step_seconds_first_hour_shortcut_keeps_the_answer(database_url) -> None:  # type: ignore[no-untyped-def]
    """The typical step gap is the median gap of the range's first 1000 distinct step times, looked for in the
    range's first hour first: a dense first hour (2 s steps, then 3 s) answers from it; a sparse one (10 s steps,
    too few) falls back to the whole range, whose first 1000 times reach into the 3 s steps; a range starting before
    any data too."""
    apply_migrations(database_url, REPO / "gateway" / "migrations", "gateway")
    times = {
        "dense": [2.0 * k for k in range(1900)] + [3800 + 3.0 * k for k in range(2000)],
        "sparse": [10.0 * k for k in range(360)] + [3600 + 3.0 * k for k in range(2000)],
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        got = {}
        for name, ts in times.items():
            sid = f"steps-{name}-{uuid.uuid4().hex[:8]}"
            write_walkers(conn, sid, [(t, 1, 1.0, 1.0) for t in ts])
            q = HistoryQueries(conn)
            got[name] = [q._step_seconds(Range(sid, ns(a), ns(b))) for a, b in ((0, 86400), (-600, 86400))]
    assert got["dense"] == [2.0, 2.0]
    # sparse: the first 1000 times hold 360 gaps of 10 s and 639 of 3 s: median 3 s (the first hour alone says 10)
    assert got["sparse"] == [3.0, 3.0]


ORIGIN = datetime(2026, 2, 3, 8, 0, 30, tzinfo=UTC)  # not on a clock hour: rollups align to the media start


@pytest.fixture(scope="module")
def hours_history(database_url: str) -> str:
    """3 people for 3.5 h at 0.1 Hz, written and rolled up batch by batch the way the history writer does it,
    overlapping batches and a late batch into minutes already rolled up included."""
    apply_migrations(database_url, REPO / "gateway" / "migrations", "gateway")
    sid = f"hours-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(5)
    pos = rng.uniform(1, 9, (3, 2))
    rows = []
    for step in range(1260):
        pos = np.clip(pos + rng.normal(0, 0.5, pos.shape), 0.1, 9.9)
        for g in range(3):
            for cam in ("camA", "camB") if g == 0 else ("camA",):
                x, y = pos[g] + (rng.normal(0, 0.2, 2) if cam == "camB" else 0)
                rows.append(
                    (ORIGIN + timedelta(seconds=10 * step), sid, step, cam, step, g + 1, g + 1, [0, 0, 1, 1], 0.9, x, y)
                )
    late = [r for r in rows if 600 <= r[2] < 606]
    rows = [r for r in rows if not 600 <= r[2] < 606]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'long', %s, %s, 'finished', %s)",
            (sid, ["camA", "camB"], json.dumps(DOC), ORIGIN),
        )
        for batch in [rows[i : i + 700] for i in range(0, len(rows), 700)] + [late]:
            with conn.cursor().copy(
                "COPY track_points (time, session_id, step, camera_id, frame_index, track_id, global_id, bbox, "
                "confidence, floor_x_m, floor_y_m) FROM STDIN"
            ) as copy:
                for row in batch:
                    copy.write_row(row)
            params = refresh_params(sid, ORIGIN, (0.0, 0.0), batch[0][0] - timedelta(minutes=3), batch[-1][0])
            for sql in REFRESH_SQL:
                conn.execute(sql, params)
    return sid


@pytest.mark.parametrize(
    ("start_min", "end_min"),
    [(None, None), (0, 180), (10, 150), (5, 50), (67, None), (None, 121), (60, 120), (59, 181), (-30, 300)],
)
def test_heatmap_from_hourly_and_minute_cells_equals_raw(database_url, hours_history, start_min, end_min) -> None:  # type: ignore[no-untyped-def]
    def at_min(m: float | None) -> int:
        return int((ORIGIN + timedelta(minutes=m)).timestamp() * 1e9) if m is not None else 0

    r = Range(hours_history, at_min(start_min), at_min(end_min))
    with psycopg.connect(database_url) as conn:
        drift = conn.execute(
            """SELECT count(*) FROM presence_cells_1h h
               FULL JOIN (SELECT date_bin('1 hour', minute, %(o)s) AS hour, cx, cy, sum(samples) AS samples
                          FROM presence_cells_1m WHERE session_id = %(s)s GROUP BY 1, 2, 3) m
                 ON h.session_id = %(s)s AND (h.hour, h.cx, h.cy) = (m.hour, m.cx, m.cy)
               WHERE (h.session_id = %(s)s OR h.session_id IS NULL) AND h.samples IS DISTINCT FROM m.samples""",
            {"s": hours_history, "o": ORIGIN},
        ).fetchone()[0]
        hours = conn.execute(
            "SELECT count(DISTINCT hour) FROM presence_cells_1h WHERE session_id = %s", (hours_history,)
        )
        assert drift == 0 and hours.fetchone()[0] == 4
        fast, raw = HistoryQueries(conn), HistoryQueries(conn, use_rollups=False)
        for cell in (0.5, 1.0, 1.5):
            got, want = fast.heatmap(r, cell)["seconds"], raw.heatmap(r, cell)["seconds"]
            assert np.allclose(got, want) and sum(want) > 0
