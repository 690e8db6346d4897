"""End to end: the six services as processes, a demo session over four cameras, scored with the kit."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import psycopg
import pytest
import websockets

from spoton.evaluation import ground_truth_from_mot, score_run
from tests.conftest import AUTH, gwapi

STEPS = 60


async def record(ws_url: str) -> list[dict]:
    messages = []
    async with websockets.connect(ws_url, max_size=None, additional_headers=AUTH) as ws:
        async for raw in ws:
            msg = json.loads(raw)
            messages.append(msg)
            if msg["type"] == "session_ended":
                break
    return messages


@pytest.fixture(scope="module")
def demo_run(stack):  # type: ignore[no-untyped-def]
    """One session of STEPS steps over every demo camera, its WebSocket messages and its summary."""
    r = gwapi.post(
        f"{stack.gateway_url}/api/v1/sessions/", timeout=30, json={"video_set": "demo", "options": {"max_steps": STEPS}}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"))
    summary = gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json()
    return sid, messages, summary


def test_step_messages_have_the_documented_shape(demo_run) -> None:  # type: ignore[no-untyped-def]
    sid, messages, summary = demo_run
    steps = [m for m in messages if m["type"] == "step"]
    assert messages[-1]["type"] == "session_ended" and messages[-1]["status"] == "finished"
    assert len(steps) == STEPS and summary["steps"] == STEPS
    for i, m in enumerate(steps, start=1):
        assert set(m) == {"type", "session_id", "step", "timestamp", "cameras"}
        assert m["step"] == i and m["session_id"] == sid and m["timestamp"].endswith("Z")
        assert set(m["cameras"]) == {"cam1", "cam2", "cam3", "cam4"}
        for cam in m["cameras"].values():
            assert cam["frame_index"] == i
            for t in cam["tracks"]:
                assert set(t) == {"track_id", "global_id", "bbox", "confidence", "floor"}
                assert len(t["bbox"]) == 4
    tracks = [t for m in steps for c in m["cameras"].values() for t in c["tracks"]]
    assert len(tracks) > STEPS * 8  # about 12 people-sightings per step on these frames
    assert all(t["global_id"] for t in tracks)
    assert sum(t["floor"] is not None for t in tracks) / len(tracks) > 0.95


def test_scores_against_ground_truth(demo_run, demo_dir, ground_truth) -> None:  # type: ignore[no-untyped-def]
    _, messages, _ = demo_run
    gt = ground_truth_from_mot({c: demo_dir / "gt" / f"{c}.txt" for c in ("cam1", "cam2", "cam3", "cam4")})
    result = score_run(gt, messages)
    print(json.dumps(result, indent=1))
    multi = result["multi_camera"]
    # Measured on this window (current rule, ByteTrack; detector auto = OpenVINO INT8 on this AMX CPU): multi-camera
    # IDF1 0.749, same-person precision 0.896 / recall 0.816, 7 global ids for 6 people, floor median 0.193 m,
    # per-camera recall 0.772-0.864. (Earlier, ONNX Runtime INT8: 0.730, 0.885 / 0.793, 8 ids.) Before the floors
    # were lowered (commit 5fded94) they were precision > 0.9 / recall > 0.8: recall is back above 0.8, precision
    # sits at its measurement. Per-camera ids as global ids score IDF1 < 0.6 and same-person recall 0 (test_demo_kit).
    assert multi["idf1"] > 0.72
    assert multi["same_person_precision"] > 0.88 and multi["same_person_recall"] > 0.80
    assert multi["floor_median_m"] <= 0.25
    assert multi["global_ids"] <= 2 * multi["gt_people"]
    for cam, s in result["cameras"].items():
        assert s["recall"] > 0.7, cam
        assert s["floor_median_m"] <= 0.25, cam  # mapping target 0.3 m; measured 0.170-0.209 m


def test_history_lands_in_postgres(demo_run, database_url, stack) -> None:  # type: ignore[no-untyped-def]
    sid, messages, _ = demo_run
    expected = sum(len(c["tracks"]) for m in messages if m["type"] == "step" for c in m["cameras"].values())
    deadline = time.monotonic() + 30
    with psycopg.connect(database_url) as conn:
        while True:
            n = conn.execute("SELECT count(*) FROM track_points WHERE session_id = %s", (sid,)).fetchone()[0]
            if n == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert n == expected
        persons = conn.execute("SELECT count(*) FROM persons WHERE session_id = %s", (sid,)).fetchone()[0]
        status = conn.execute("SELECT status, steps FROM sessions WHERE session_id = %s", (sid,)).fetchone()
    gids = {t["global_id"] for m in messages if m["type"] == "step" for c in m["cameras"].values() for t in c["tracks"]}
    assert persons == len(gids)
    assert status == ("finished", STEPS)
    r = gwapi.get(f"{stack.gateway_url}/api/v1/tracking/{sid}/persons", timeout=10)
    assert len(r.json()["persons"]) == len(gids)


def test_rollups_maintained_by_the_writer(demo_run, database_url) -> None:  # type: ignore[no-untyped-def]
    from tests.test_analytics import assert_rollups_match_raw

    sid = demo_run[0]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM presence_1m WHERE session_id = %s", (sid,)).fetchone()[0] > 0
    assert_rollups_match_raw(database_url, sid)


def test_occupancy_and_trajectory_answer_from_history(demo_run, stack) -> None:  # type: ignore[no-untyped-def]
    sid, messages, _ = demo_run
    r = gwapi.get(
        f"{stack.gateway_url}/api/v1/analytics/occupancy", params={"session_id": sid, "bucket_s": 2}, timeout=30
    )
    assert r.status_code == 200, r.text
    buckets = r.json()["buckets"]
    assert len(buckets) == 5, buckets  # 60 steps at 7 fps = 8.4 s of video
    assert all(b["people"] >= 1 for b in buckets)
    gids = {t["global_id"] for m in messages if m["type"] == "step" for c in m["cameras"].values() for t in c["tracks"]}
    assert max(b["people"] for b in buckets) <= len(gids)
    r = gwapi.get(f"{stack.gateway_url}/api/v1/analytics/trajectory", params={"session_id": sid}, timeout=30)
    trajectories = r.json()["trajectories"]
    assert len(trajectories) >= 3
    speeds = [t["mean_speed_mps"] for t in trajectories if t["length_m"] > 1]
    # People walk (PETS: about 1-1.5 m/s); one wrongly merged identity may jump, so the median is what we hold.
    assert speeds and 0.3 < float(np.median(speeds)) < 2.5, speeds


def test_latest_step_and_health(demo_run, stack) -> None:  # type: ignore[no-untyped-def]
    sid, messages, _ = demo_run
    latest = gwapi.get(f"{stack.gateway_url}/api/v1/tracking/{sid}", timeout=10).json()
    assert latest == [m for m in messages if m["type"] == "step"][-1]
    health = gwapi.get(f"{stack.gateway_url}/health", timeout=10).json()
    assert health["status"] == "healthy" and health["database_connected"] and health["models_loaded"]
    assert health["device"] == "cpu" and health["gpu_available"] is False  # the detector's device, as it reports it
    assert set(health["services"]) == {"detection", "tracking", "reid", "mapping", "analytics"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/v1/sessions/", {"video_set": "nosuch"}, 404),
        ("post", "/api/v1/sessions/", {"video_set": "demo", "cameras": ["cam9"]}, 404),
        ("post", "/api/v1/sessions/", {"cameras": 3}, 422),
        ("post", "/api/v1/sessions/", "{not json", 422),
        ("get", "/api/v1/sessions/nope", None, 404),
        ("get", "/api/v1/tracking/nope", None, 404),
        ("get", "/api/v1/video-sets/nosuch", None, 404),
        ("get", "/api/v1/analytics/occupancy?session_id=nope", None, 404),
        ("get", "/api/v1/analytics/occupancy?session_id=x&start=yesterday", None, 400),
    ],
)
def test_bad_requests_get_json_errors(stack, method, path, body, status) -> None:  # type: ignore[no-untyped-def]
    url = stack.gateway_url + path
    if isinstance(body, str):
        r = gwapi.request(method, url, content=body, headers={"content-type": "application/json"}, timeout=10)
    else:
        r = gwapi.request(method, url, json=body, timeout=10)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] and err["message"]


def test_websocket_unknown_session_is_closed(stack) -> None:  # type: ignore[no-untyped-def]
    async def connect() -> int:
        async with websockets.connect(
            f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/nope", additional_headers=AUTH
        ) as ws:
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else 0
        return 0

    assert asyncio.run(connect()) == 4404


def test_camera_that_sees_nobody_without_calibration(stack) -> None:  # type: ignore[no-untyped-def]
    r = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", json={"video_set": "empty"}, timeout=30)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"))
    assert messages[-1] == {
        "type": "session_ended",
        "session_id": sid,
        "status": "finished",
        "steps": 10,
        "error": None,
    }
    assert all(m["cameras"]["blank"]["tracks"] == [] for m in messages[:-1])


def test_broken_video_fails_the_session_not_the_gateway(stack) -> None:  # type: ignore[no-untyped-def]
    r = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", json={"video_set": "broken"}, timeout=30)
    sid = r.json()["session_id"]
    deadline = time.monotonic() + 30
    while (s := gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json())["status"] in (
        "starting",
        "running",
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert s["status"] == "failed" and "broken.mp4" in s["last_error"]
    assert gwapi.get(f"{stack.gateway_url}/health", timeout=10).json()["status"] == "healthy"


def test_floor_plan_and_its_image(stack) -> None:  # type: ignore[no-untyped-def]
    floor = gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/rules/floor", timeout=10).json()
    assert floor["floor"]["image"] == "floor.png" and floor["zones"] and floor["lines"]
    png = gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/rules/floor.png", timeout=10)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    missing = gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/demo/floor.png", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_annotated_mjpeg_stream(stack) -> None:  # type: ignore[no-untyped-def]
    import cv2

    r = gwapi.post(
        f"{stack.gateway_url}/api/v1/sessions/",
        json={"video_set": "demo", "cameras": ["cam3"], "options": {"max_steps": 8}},
        timeout=30,
    )
    sid = r.json()["session_id"]
    url = f"{stack.gateway_url}/api/v1/sessions/{sid}/cameras/cam3/stream.mjpeg"
    with gwapi.stream("GET", url, params={"max_frames": 3}, timeout=60) as resp:
        assert resp.headers["content-type"].startswith("multipart/x-mixed-replace")
        body = resp.read()
    parts = [p for p in body.split(b"--frame") if b"image/jpeg" in p]
    assert len(parts) == 3
    jpeg = parts[0].split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (384, 544, 3)
    assert (
        gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}/cameras/cam9/stream.mjpeg", timeout=10).status_code == 404
    )


def test_identity_corrections_through_the_gateway(demo_run, stack) -> None:  # type: ignore[no-untyped-def]
    sid, messages, _ = demo_run
    last = [m for m in messages if m["type"] == "step"][-1]
    cam, body = next((c, b) for c, b in last["cameras"].items() if b["tracks"])
    track = body["tracks"][0]
    base = f"{stack.gateway_url}/api/v1/tracking/{sid}/persons"
    split = gwapi.post(f"{base}/split", json={"camera_id": cam, "track_id": track["track_id"]}, timeout=10)
    assert split.status_code == 200
    new_gid = split.json()["global_id"]
    assert new_gid != track["global_id"]
    # Each correction answers the identity_update rows it sent to the session's subscribers (DESIGN §3).
    change = {"camera_id": cam, "track_id": track["track_id"], "from_global_id": track["global_id"]}
    (row,) = split.json()["changes"]
    assert (row | change) == row and (row["to_global_id"], row["reason"]) == (new_gid, "split")
    merged = gwapi.post(f"{base}/merge", json={"into": track["global_id"], "from": new_gid}, timeout=10)
    assert merged.status_code == 200 and merged.json()["global_id"] == track["global_id"]
    (row,) = merged.json()["changes"]
    assert (row["camera_id"], row["track_id"], row["from_global_id"], row["to_global_id"], row["reason"]) == (
        cam,
        track["track_id"],
        new_gid,
        track["global_id"],
        "merge",
    )
    assert gwapi.post(f"{base}/merge", json={"into": track["global_id"], "from": 99999}, timeout=10).status_code == 404
    assert gwapi.post(f"{base}/split", json={"camera_id": "cam9", "track_id": 1}, timeout=10).status_code == 404
    assert gwapi.post(f"{base}/merge", json={"into": 0, "from": 1}, timeout=10).status_code == 422
    # Merging two persons of the history: reads resolve through the correction (rows are not rewritten).
    count_url = f"{stack.gateway_url}/api/v1/analytics/people-count"
    deadline = time.monotonic() + 20
    while not (before := gwapi.get(count_url, params={"session_id": sid}, timeout=10).json())["count"]:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    into, source = before["global_ids"][0], before["global_ids"][-1]
    assert gwapi.post(f"{base}/merge", json={"into": into, "from": source}, timeout=10).status_code == 200
    after = gwapi.get(count_url, params={"session_id": sid}, timeout=10).json()
    assert after["count"] == before["count"] - 1 and source not in after["global_ids"] and into in after["global_ids"]
    traj = gwapi.get(
        f"{stack.gateway_url}/api/v1/analytics/trajectory",
        params={"session_id": sid, "global_id": source},
        timeout=10,
    )
    assert traj.status_code == 404  # its points now belong to `into`


def test_person_thumbnails(demo_run, stack) -> None:  # type: ignore[no-untyped-def]
    """Every person of the persons list links a thumbnail: a real crop of a person, from one of the cameras."""
    import cv2

    sid, _, _ = demo_run
    base = f"{stack.gateway_url}/api/v1/tracking/{sid}/persons"
    deadline = time.monotonic() + 20
    while not (persons := gwapi.get(base, timeout=10).json()["persons"]):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    served = 0
    for p in persons[:6]:
        r = gwapi.get(stack.gateway_url + p["thumbnail"], timeout=10)
        if r.status_code == 404:  # merged away by the corrections test
            continue
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        crop = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape[0] >= 16 and crop.shape[1] >= 8 and crop.shape[0] > crop.shape[1]  # a standing person
        assert r.headers["x-camera-id"] in {"cam1", "cam2", "cam3", "cam4"}
        served += 1
    assert served >= 3
    assert gwapi.get(f"{base}/999999/thumbnail.jpg", timeout=10).status_code == 404


def test_privacy_mode_blurs_people_on_the_camera_stream(stack) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from gateway.render import annotate_jpeg
    from spoton.frames import encode_frame
    from spoton.v1 import common_pb2

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    frame = encode_frame(image, "c", 1, 0, common_pb2.FRAME_ENCODING_RAW_BGR8)
    tracks = [{"track_id": 1, "global_id": 3, "bbox": [100, 50, 180, 200], "confidence": 0.9, "floor": None}]

    def decoded(privacy: bool) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(annotate_jpeg(frame, tracks, privacy), np.uint8), cv2.IMREAD_COLOR)

    plain, blurred = decoded(False), decoded(True)
    inside = (slice(60, 190), slice(110, 170))
    assert blurred[inside].std() < 0.3 * plain[inside].std()  # the person is unrecognisable
    assert np.abs(blurred[:, :90].astype(int) - plain[:, :90].astype(int)).mean() < 3  # the scene is not
    # Through the gateway, with frames travelling RAW between the stages.
    body = {"video_set": "demo", "cameras": ["cam1"], "options": {"max_steps": 4, "frame_encoding": "raw"}}
    sid = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", json=body, timeout=30).json()["session_id"]
    url = f"{stack.gateway_url}/api/v1/sessions/{sid}/cameras/cam1/stream.mjpeg"
    with gwapi.stream("GET", url, params={"max_frames": 1, "privacy": True}, timeout=60) as resp:
        part = resp.read().split(b"\r\n\r\n", 1)[1]
    assert cv2.imdecode(np.frombuffer(part.rstrip(b"\r\n-frame"), np.uint8), cv2.IMREAD_COLOR) is not None
