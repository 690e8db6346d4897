"""Privacy and retention: a purged session leaves nothing behind; history older than the retention expires."""

from __future__ import annotations

import time
import uuid

import grpc
import psycopg

from gateway.store import PURGE_TABLES
from spoton.launcher import Stack
from spoton.v1 import reid_pb2, reid_pb2_grpc
from tests.conftest import gwapi, service_channel


def test_purging_a_session_deletes_everything_about_it(stack: Stack, database_url: str) -> None:
    api = stack.gateway_url + "/api/v1/sessions/"
    sid = gwapi.post(api, json={"video_set": "rules", "options": {"max_steps": 12}}, timeout=30).json()["session_id"]
    deadline = time.monotonic() + 60
    while gwapi.get(api + sid, timeout=10).json()["status"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    with psycopg.connect(database_url) as conn:
        deadline = time.monotonic() + 20
        while not conn.execute("SELECT count(*) FROM persons WHERE session_id = %s", (sid,)).fetchone()[0]:
            assert time.monotonic() < deadline, "history never arrived"
            time.sleep(0.3)
    reid = reid_pb2_grpc.ReidServiceStub(service_channel(stack.addr("reid")))
    assert reid.GetGalleryStats(reid_pb2.GetGalleryStatsRequest(session_id=sid), timeout=10).persons > 0
    r = gwapi.delete(api + sid, params={"purge": True}, timeout=60)
    assert r.status_code == 200 and r.json()["purged_rows"] > 0, r.text
    with psycopg.connect(database_url) as conn:
        for table in PURGE_TABLES:
            left = conn.execute(f"SELECT count(*) FROM {table} WHERE session_id = %s", (sid,)).fetchone()[0]
            assert left == 0, table
    try:
        reid.GetGalleryStats(reid_pb2.GetGalleryStatsRequest(session_id=sid), timeout=10)
        raise AssertionError("the gallery survived the purge")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
    assert gwapi.get(api + sid, timeout=10).status_code == 404
    assert gwapi.delete(api + sid, params={"purge": True}, timeout=10).status_code == 404


def test_history_older_than_the_retention_expires(stack: Stack, database_url: str) -> None:
    sid = f"old-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        for age_days in (40, 1):
            conn.execute(
                "INSERT INTO track_points (time, session_id, step, camera_id, frame_index, track_id, bbox, confidence)"
                " VALUES (now() - make_interval(days => %s), %s, 1, 'c', 1, 1, ARRAY[0,0,1,1]::real[], 0.9)",
                (age_days, sid),
            )
    stack.start_gateway("gateway-retention", {"HISTORY_RETENTION_DAYS": "30", "HISTORY_RETENTION_CHECK_S": "0.5"})
    try:
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(database_url) as conn:
                ages = [
                    r[0]
                    for r in conn.execute(
                        "SELECT extract(day from now() - time) FROM track_points WHERE session_id = %s", (sid,)
                    ).fetchall()
                ]
            if len(ages) == 1:
                break
            stack._check_alive("gateway-retention")
            assert time.monotonic() < deadline, ages
            time.sleep(0.5)
        assert ages[0] < 30  # the recent row stays
    finally:
        stack.procs.pop("gateway-retention").terminate()
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM track_points WHERE session_id = %s", (sid,))
