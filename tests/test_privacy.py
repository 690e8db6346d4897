"""Privacy and retention: a purged session leaves nothing behind; history older than the retention expires."""

from __future__ import annotations

import time
import uuid

import cv2
import grpc
import numpy as np
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


def test_history_older_than_the_retention_expires_in_every_owners_tables(stack: Stack, database_url: str) -> None:
    sid = f"old-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        for age_days in (40, 1):
            conn.execute(
                "INSERT INTO track_points (time, session_id, step, camera_id, frame_index, track_id, bbox, confidence)"
                " VALUES (now() - make_interval(days => %s), %s, 1, 'c', 1, 1, ARRAY[0,0,1,1]::real[], 0.9)",
                (age_days, sid),
            )
            conn.execute(
                "INSERT INTO zone_visit_bounds (session_id, bucket, first_enter, last_exit) VALUES (%s,"
                " now() - make_interval(days => %s), now() - make_interval(days => %s),"
                " now() - make_interval(days => %s))",
                (sid, age_days, age_days, age_days),
            )
            # reid_svc's tables: a gallery (and a correction) per age; reid deletes them when the gateway asks.
            conn.execute(
                "INSERT INTO galleries (session_id, options, state, embeddings, updated_at) VALUES "
                "(%s, '{}', '{}', ''::bytea, now() - make_interval(days => %s))",
                (f"{sid}-{age_days}d", age_days),
            )
            conn.execute(
                "INSERT INTO identity_corrections (session_id, kind, detail, created_at) VALUES "
                "(%s, 'merge', '{}', now() - make_interval(days => %s))",
                (f"{sid}-{age_days}d", age_days),
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
                bounds = conn.execute(
                    "SELECT count(*) FROM zone_visit_bounds WHERE session_id = %s", (sid,)
                ).fetchone()[0]
            if len(ages) == 1 and bounds == 1:
                break
            stack._check_alive("gateway-retention")
            assert time.monotonic() < deadline, ages
            time.sleep(0.5)
        assert ages[0] < 30  # the recent row stays
        while True:  # reid's tables go in the same pass, through reid_svc's PurgeHistory
            with psycopg.connect(database_url) as conn:
                kept = {
                    table: [
                        r[0]
                        for r in conn.execute(
                            f"SELECT session_id FROM {table} WHERE session_id LIKE %s", (f"{sid}-%",)
                        ).fetchall()
                    ]
                    for table in ("galleries", "identity_corrections")
                }
            if kept == {"galleries": [f"{sid}-1d"], "identity_corrections": [f"{sid}-1d"]}:
                break  # the 40-day-old gallery and correction are gone, the recent ones stay
            assert time.monotonic() < deadline, kept
            time.sleep(0.5)
    finally:
        stack.procs.pop("gateway-retention").terminate()
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM track_points WHERE session_id = %s", (sid,))
            conn.execute("DELETE FROM zone_visit_bounds WHERE session_id = %s", (sid,))
            conn.execute("DELETE FROM galleries WHERE session_id LIKE %s", (f"{sid}-%",))
            conn.execute("DELETE FROM identity_corrections WHERE session_id LIKE %s", (f"{sid}-%",))


def finished_session_with_persons(url: str, database_url: str) -> tuple[str, list[int]]:
    """A short demo session on gateway ``url``, finished, with its persons stored; their global ids."""
    api = url + "/api/v1/sessions/"
    sid = gwapi.post(api, json={"video_set": "demo", "options": {"max_steps": 15}}, timeout=30).json()["session_id"]
    deadline = time.monotonic() + 90
    while gwapi.get(api + sid, timeout=10).json()["status"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    while not (
        gids := [
            p["global_id"] for p in gwapi.get(f"{url}/api/v1/tracking/{sid}/persons", timeout=10).json()["persons"]
        ]
    ):
        assert time.monotonic() < deadline, "no persons stored"
        time.sleep(0.3)
    return sid, gids


def sharpness(jpeg: bytes) -> float:
    """Variance of the Laplacian of the grey image: high for detail, near zero for a blurred picture."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(cv2.Laplacian(image, cv2.CV_64F).var())


def test_privacy_mode_blurs_person_thumbnails_or_keeps_no_crops(stack: Stack, database_url: str) -> None:
    reid = reid_pb2_grpc.ReidServiceStub(service_channel(stack.addr("reid")))
    blur = stack.start_gateway("gateway-privacy-blur", {"PRIVACY_MODE": "true"})
    try:
        sid, gids = finished_session_with_persons(blur, database_url)
        compared = 0
        for gid in gids:
            try:
                raw = reid.GetPersonThumbnail(
                    reid_pb2.GetPersonThumbnailRequest(session_id=sid, global_id=gid), timeout=10
                )
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
                continue
            served = gwapi.get(f"{blur}/api/v1/tracking/{sid}/persons/{gid}/thumbnail.jpg", timeout=30)
            assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
            a = cv2.imdecode(np.frombuffer(raw.jpeg, np.uint8), cv2.IMREAD_COLOR)
            b = cv2.imdecode(np.frombuffer(served.content, np.uint8), cv2.IMREAD_COLOR)
            assert a.shape == b.shape  # the same crop...
            assert abs(float(a.mean()) - float(b.mean())) < 8.0
            assert sharpness(served.content) < 0.1 * sharpness(raw.jpeg), gid  # ...with its detail gone
            compared += 1
        assert compared > 0
    finally:
        stack.procs.pop("gateway-privacy-blur").terminate()
    refuse = stack.start_gateway("gateway-privacy-refuse", {"PRIVACY_MODE": "true", "PRIVACY_THUMBNAILS": "refuse"})
    try:
        sid, gids = finished_session_with_persons(refuse, database_url)
        r = gwapi.get(f"{refuse}/api/v1/tracking/{sid}/persons/{gids[0]}/thumbnail.jpg", timeout=30)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        for gid in gids:  # no crop ever reached reid
            try:
                reid.GetPersonThumbnail(reid_pb2.GetPersonThumbnailRequest(session_id=sid, global_id=gid), timeout=10)
                raise AssertionError(f"person {gid} has a thumbnail although crops are not collected")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
    finally:
        stack.procs.pop("gateway-privacy-refuse").terminate()
