"""Analytics over a synthetic history whose answers are worked out by hand; zone events from the gateway's core.

Floor 10 m x 10 m. Zone A = [0, 5] x [0, 5]. Line L from (5, 0) to (5, 10): its left side is x < 5, so walking
towards +x crosses it forward. One step per second from the session's media start:
  * person 1, t = 0..9 s, at (0.5 + t, 2), seen by camA and camB: inside A for t = 0..4, leaves at t = 5 (dwell 5 s),
    crosses L forward between t = 4 and 5;
  * person 2, t = 2..6 s, at (9.5 - 2 (t - 2), 4), seen by camA: crosses L backward between t = 4 and 5, inside A
    at t = 5 and 6, then the history ends (dwell 1 s).
"""

from __future__ import annotations

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
from gateway.events import ZoneEventDetector
from spoton.rollups import REFRESH_SQL, refresh_params
from spoton.v1 import analytics_pb2, analytics_pb2_grpc
from spoton.videoset import parse_video_set
from tests.conftest import AUTH, gwapi

START = datetime(2026, 1, 1, tzinfo=UTC)
DOC = {
    "name": "synthetic",
    "floor": {"width_m": 10.0, "height_m": 10.0, "origin_m": [0.0, 0.0]},
    "cameras": [{"id": "camA", "source": "a.mp4"}, {"id": "camB", "source": "b.mp4"}],
    "zones": [{"id": "A", "polygon": [[0, 0], [5, 0], [5, 5], [0, 5]]}],
    "lines": [{"id": "L", "a": [5, 0], "b": [5, 10]}],
}


def positions() -> dict[int, dict[int, tuple[float, float]]]:
    """t (s) -> global id -> floor point."""
    out: dict[int, dict[int, tuple[float, float]]] = {}
    for t in range(10):
        out.setdefault(t, {})[1] = (0.5 + t, 2.0)
    for t in range(2, 7):
        out.setdefault(t, {})[2] = (9.5 - 2 * (t - 2), 4.0)
    return out


def ns(t: float) -> int:
    return int((START + timedelta(seconds=t)).timestamp() * 1e9)


def test_zone_event_detector_on_the_synthetic_walk() -> None:
    det = ZoneEventDetector(parse_video_set(DOC, Path("synthetic.yaml")))
    events = []
    for t, people in sorted(positions().items()):
        events += det.step(ns(t), {g: np.array(p) for g, p in people.items()})
    events += det.finish()
    got = [(round((e.timestamp_ns - ns(0)) / 1e9), e.zone_id, e.global_id, e.kind) for e in events]
    assert got == [
        (0, "A", 1, "enter"),
        (5, "A", 1, "exit"),
        (5, "L", 1, "cross_forward"),
        (5, "A", 2, "enter"),
        (5, "L", 2, "cross_backward"),
        (6, "A", 2, "exit"),
    ]


@pytest.fixture(scope="module")
def history(database_url: str, stack) -> str:  # type: ignore[no-untyped-def]
    """Write the synthetic session into the history tables exactly as the gateway would."""
    sid = f"synthetic-{uuid.uuid4().hex[:8]}"
    det = ZoneEventDetector(parse_video_set(DOC, Path("synthetic.yaml")))
    points, events = [], []
    for t, people in sorted(positions().items()):
        for gid, (x, y) in people.items():
            for cam in ("camA", "camB") if gid == 1 else ("camA",):
                points.append(
                    (
                        START + timedelta(seconds=t),
                        sid,
                        t + 1,
                        cam,
                        t + 1,
                        gid,
                        gid,
                        [x * 10, y * 10, x * 10 + 20, y * 10 + 50],
                        0.9,
                        x,
                        y,
                    )
                )
        events += det.step(ns(t), {g: np.array(p) for g, p in people.items()})
    events += det.finish()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, video_set, cameras, video_set_doc, status, media_start) "
            "VALUES (%s, 'synthetic', %s, %s, 'finished', %s)",
            (sid, ["camA", "camB"], json.dumps(DOC), START),
        )
        with conn.cursor().copy(
            "COPY track_points (time, session_id, step, camera_id, frame_index, track_id, "
            "global_id, bbox, confidence, floor_x_m, floor_y_m) FROM STDIN"
        ) as copy:
            for row in points:
                copy.write_row(row)
        with conn.cursor().copy("COPY zone_events (time, session_id, zone_id, global_id, kind) FROM STDIN") as copy:
            for e in events:
                copy.write_row((datetime.fromtimestamp(e.timestamp_ns / 1e9, UTC), sid, e.zone_id, e.global_id, e.kind))
        params = refresh_params(sid, START, (0.0, 0.0), points[0][0], points[-1][0])
        for sql in REFRESH_SQL:
            conn.execute(sql, params)
    return sid


@pytest.fixture
def analytics(channel_to):  # type: ignore[no-untyped-def]
    return analytics_pb2_grpc.AnalyticsServiceStub(channel_to("analytics"))


def rng(sid: str, start: float | None = None, end: float | None = None) -> analytics_pb2.TimeRange:
    return analytics_pb2.TimeRange(
        session_id=sid, start_ns=ns(start) if start is not None else 0, end_ns=ns(end) if end is not None else 0
    )


def test_occupancy_whole_floor_camera_and_zone(analytics, history) -> None:  # type: ignore[no-untyped-def]
    floor = analytics.Occupancy(analytics_pb2.OccupancyRequest(range=rng(history), bucket_s=5), timeout=10).buckets
    assert [(b.start_ns, b.people, round(b.mean_people, 3)) for b in floor] == [(ns(0), 2, 1.6), (ns(5), 2, 1.4)]
    cams = analytics.Occupancy(
        analytics_pb2.OccupancyRequest(range=rng(history), bucket_s=5, group_by=analytics_pb2.OCCUPANCY_GROUP_CAMERA),
        timeout=10,
    ).buckets
    assert [(b.group, b.people) for b in cams if b.start_ns == ns(0)] == [("camA", 2), ("camB", 1)]
    zones = analytics.Occupancy(
        analytics_pb2.OccupancyRequest(range=rng(history), bucket_s=5, group_by=analytics_pb2.OCCUPANCY_GROUP_ZONE),
        timeout=10,
    ).buckets
    assert [(b.group, b.people, round(b.mean_people, 3)) for b in zones] == [("A", 1, 1.0), ("A", 1, 0.4)]


def test_people_count_dwell_crossings_summary(analytics, history) -> None:  # type: ignore[no-untyped-def]
    assert analytics.PeopleCount(analytics_pb2.PeopleCountRequest(range=rng(history)), timeout=10).count == 2
    assert analytics.PeopleCount(analytics_pb2.PeopleCountRequest(range=rng(history, 7, 10)), timeout=10).count == 1
    dwell = analytics.Dwell(analytics_pb2.DwellRequest(range=rng(history), zone_id="A"), timeout=10)
    assert [(d.global_id, d.dwell_s) for d in dwell.dwells] == [(1, 5.0), (2, 1.0)]
    assert dwell.mean_s == 3.0 and dwell.p50_s == 3.0
    lines = analytics.LineCrossings(analytics_pb2.LineCrossingsRequest(range=rng(history)), timeout=10).lines
    assert [(c.line_id, c.forward, c.backward) for c in lines] == [("L", 1, 1)]
    events = analytics.ZoneEvents(analytics_pb2.ZoneEventsRequest(range=rng(history), zone_id="A"), timeout=10).events
    assert [(e.global_id, e.kind) for e in events] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    s = analytics.Summary(analytics_pb2.SummaryRequest(range=rng(history)), timeout=10)
    assert (s.people, s.track_points, s.peak_occupancy, s.mean_dwell_s) == (2, 25, 2.0, 3.0)
    assert list(s.cameras) == ["camA", "camB"] and s.first_ns == ns(0) and s.last_ns == ns(9)


def test_heatmap_presence_seconds(analytics, history) -> None:  # type: ignore[no-untyped-def]
    h = analytics.Heatmap(analytics_pb2.HeatmapRequest(range=rng(history), cell_m=1.0), timeout=10)
    grid = np.array(h.seconds).reshape(h.rows, h.cols)
    assert (h.rows, h.cols) == (10, 10) and grid.sum() == 15.0
    assert grid[2].tolist() == [1.0] * 10
    assert grid[4].tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]


def test_export_csv_and_parquet(stack, history) -> None:  # type: ignore[no-untyped-def]
    base = f"{stack.gateway_url}/api/v1/analytics/export"
    csv = gwapi.get(base, params={"session_id": history, "format": "csv"}, timeout=30)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    df = pd.read_csv(io.StringIO(csv.text))
    assert len(df) == 25 and {"global_id", "floor_x_m", "x1", "y2"} <= set(df.columns)
    pq = gwapi.get(base, params={"session_id": history, "format": "parquet"}, timeout=30)
    assert len(pd.read_parquet(io.BytesIO(pq.content))) == 25


def test_rest_routes_and_heatmap_png(stack, history) -> None:  # type: ignore[no-untyped-def]
    import cv2

    url = stack.gateway_url + "/api/v1/analytics"
    assert gwapi.get(f"{url}/people-count", params={"session_id": history}, timeout=10).json()["count"] == 2
    ev = gwapi.get(f"{url}/zone-events", params={"session_id": history, "zone_id": "A"}, timeout=10).json()["events"]
    assert [e["kind"] for e in ev] == ["enter", "exit", "enter", "exit"] and ev[0]["timestamp"].startswith("2026-01-01")
    s = gwapi.get(f"{url}/summary", params={"session_id": history}, timeout=10).json()
    assert s["people"] == 2 and s["first"] == "2026-01-01T00:00:00Z"
    lc = gwapi.get(f"{url}/line-crossings", params={"session_id": history}, timeout=10).json()
    assert lc["lines"] == [{"line_id": "L", "forward": 1, "backward": 1}]
    png = gwapi.get(f"{url}/heatmap.png", params={"session_id": history, "cell_m": 1}, timeout=10)
    img = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (200, 200)
    occ = gwapi.get(
        f"{url}/occupancy", params={"session_id": history, "bucket_s": 5, "start": "2026-01-01T00:00:05Z"}, timeout=10
    ).json()
    assert [b["people"] for b in occ["buckets"]] == [2]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda a, sid: a.Occupancy(analytics_pb2.OccupancyRequest(range=rng("nope"), bucket_s=1), timeout=10),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            lambda a, sid: a.Occupancy(analytics_pb2.OccupancyRequest(range=rng(sid, 9, 2), bucket_s=1), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            lambda a, sid: a.Occupancy(analytics_pb2.OccupancyRequest(range=rng(sid), bucket_s=1e-5), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            lambda a, sid: a.Dwell(analytics_pb2.DwellRequest(range=rng(sid), zone_id="nope"), timeout=10),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            lambda a, sid: a.Heatmap(analytics_pb2.HeatmapRequest(range=rng(sid), cell_m=1e-4), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            lambda a, sid: a.Trajectory(analytics_pb2.TrajectoryRequest(range=rng(sid), global_id=99), timeout=10),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            lambda a, sid: a.PeopleCount(analytics_pb2.PeopleCountRequest(range=analytics_pb2.TimeRange()), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_bad_queries(analytics, history, call, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call(analytics, history)
    assert err.value.code() == code and err.value.details()


def test_rule_engine_edges() -> None:
    from gateway.events import ZoneEvent
    from gateway.rules import RuleEngine
    from spoton.videoset import Rule

    engine = RuleEngine(
        [
            Rule("crowd", "occupancy_above", "A", 1),
            Rule("linger", "loitering", "A", 3.0),
            Rule("oneway", "wrong_way", "L", allowed="forward"),
        ]
    )
    s = 1_000_000_000
    assert engine.step(0, [ZoneEvent(0, "A", 1, "enter")]) == []
    crowd = engine.step(1 * s, [ZoneEvent(1 * s, "A", 2, "enter")])
    assert [(a.rule_id, a.value) for a in crowd] == [("crowd", 2.0)]
    assert engine.step(2 * s, []) == []  # still crowded: no repeat
    linger = engine.step(3 * s, [ZoneEvent(3 * s, "A", 2, "exit")])
    assert [(a.rule_id, a.global_id, a.value) for a in linger] == [("linger", 1, 3.0)]
    again = engine.step(4 * s, [ZoneEvent(4 * s, "A", 3, "enter")])  # back to 2 people after dropping to 1
    assert [a.rule_id for a in again] == ["crowd"]
    wrong = engine.step(5 * s, [ZoneEvent(5 * s, "L", 7, "cross_backward"), ZoneEvent(5 * s, "L", 8, "cross_forward")])
    assert [(a.rule_id, a.global_id) for a in wrong] == [("oneway", 7)]
    assert "wrong way" in wrong[0].message


def test_rules_raise_alerts_live_in_history_and_on_the_webhook(stack, webhook, database_url) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import time

    import websockets

    r = gwapi.post(
        f"{stack.gateway_url}/api/v1/sessions/", json={"video_set": "rules", "options": {"max_steps": 25}}, timeout=30
    )
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]

    async def record() -> list[dict]:
        out = []
        async with websockets.connect(
            f"ws://127.0.0.1:{stack.gateway_port}/ws/events/{sid}", additional_headers=AUTH
        ) as ws:
            async for raw in ws:
                out.append(json.loads(raw))
                if out[-1]["type"] == "session_ended":
                    return out
        return out

    messages = asyncio.run(record())
    alerts = [m for m in messages if m["type"] == "alert"]
    assert {a["rule_id"] for a in alerts} == {"crowd", "linger"}
    assert any(m["type"] == "zone_event" and m["kind"] == "enter" for m in messages)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM alerts WHERE session_id = %s", (sid,)).fetchone()[0]
        if stored == len(alerts) and len([w for w in webhook.received if w["session_id"] == sid]) == len(alerts):
            break
        time.sleep(0.3)
    assert stored == len(alerts)
    assert sorted(w["rule_id"] for w in webhook.received if w["session_id"] == sid) == sorted(
        a["rule_id"] for a in alerts
    )


def assert_rollups_match_raw(database_url: str, session_id: str) -> None:
    """The per-minute rollups give exactly the raw tables' answers."""
    with psycopg.connect(database_url) as conn:
        fast, raw = HistoryQueries(conn), HistoryQueries(conn, use_rollups=False)
        r = Range(session_id)
        assert fast.occupancy(r, 60.0) == raw.occupancy(r, 60.0)
        assert fast.occupancy(r, 60.0, "zone") == raw.occupancy(r, 60.0, "zone")
        assert fast.summary(r) == raw.summary(r)
        assert fast.people_count(r) == raw.people_count(r)
        for cell in (0.5, 1.0):
            assert np.allclose(fast.heatmap(r, cell)["seconds"], raw.heatmap(r, cell)["seconds"])


def test_rollups_match_raw_queries(database_url, history) -> None:  # type: ignore[no-untyped-def]
    assert_rollups_match_raw(database_url, history)
