"""Person search through the gateway (``POST /api/v1/search/persons``): a video set that opted in
(``person_search: true``), two real demo sessions on it through every service, then searches by a known person and by
an uploaded crop cut from a demo frame at a ground-truth box; bad input, unknown persons and sets, a set that has not
opted in, and purge."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import psycopg
import pytest
import yaml

from gateway.requests import associate_start
from spoton.demo.data import load_mot
from spoton.frames import MAX_CROP_BYTES, person_crop
from spoton.videoset import load_video_set, parse_video_set
from tests.conftest import ADMIN_KEY, AUTH, AUTH_ENV, OPERATOR_KEY, SERVICE_KEY, VIEWER_KEY, gwapi

# A set of its own per run: the index then holds this run's sessions only.
SET = f"searchdemo-{uuid.uuid4().hex[:6]}"
STEPS = 30
URL = "/api/v1/search/persons"


def test_person_search_is_off_unless_the_video_set_opts_in(tmp_path: Path) -> None:
    doc = {"name": "s", "floor": {"width_m": 5, "height_m": 5}, "cameras": [{"id": "c", "source": "c.mp4"}]}
    assert parse_video_set(doc, tmp_path / "s.yaml").person_search is False
    on = parse_video_set(doc | {"person_search": True}, tmp_path / "s.yaml")
    assert on.person_search is True and on.to_dict()["person_search"] is True
    with pytest.raises(ValueError, match="person_search must be true or false"):
        parse_video_set(doc | {"person_search": "yes"}, tmp_path / "s.yaml")
    start = associate_start("sid", {}, 0, on.name, on.person_search).start
    assert (start.session_id, start.video_set, start.person_search) == ("sid", "s", True)
    assert associate_start("sid", {}, 0).start.person_search is False


def wait_finished(base: str, sid: str, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while (s := gwapi.get(f"{base}/api/v1/sessions/{sid}", timeout=10).json())["status"] in ("starting", "running"):
        assert time.monotonic() < deadline, s
        time.sleep(1)
    return s


@pytest.fixture(scope="module")
def searchable(stack, demo_dir: Path):  # type: ignore[no-untyped-def]
    """The demo as a video set of its own (``SET``) with person search on (over REST), and two sessions on it: A over
    cam1+cam2, B over cam3+cam4; and C over the demo set's cam1 (not opted in). STEPS steps each, run at once.
    Yields (A, B, C); all three are purged and the set deleted afterwards."""
    base = stack.gateway_url
    doc = yaml.safe_load((demo_dir / "demo.yaml").read_text()) | {"name": SET, "person_search": True}
    r = gwapi.post(f"{base}/api/v1/video-sets/", json=doc, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["person_search"] is True
    sids = []
    for vs, cams in ((SET, ["cam1", "cam2"]), (SET, ["cam3", "cam4"]), ("demo", ["cam1"])):
        body = {"video_set": vs, "cameras": cams, "options": {"max_steps": STEPS}}
        r = gwapi.post(f"{base}/api/v1/sessions/", json=body, timeout=30)
        assert r.status_code == 201, r.text
        sids.append(r.json()["session_id"])
    for sid in sids:
        assert wait_finished(base, sid)["status"] == "finished"
    yield tuple(sids)
    for sid in sids:
        gwapi.delete(f"{base}/api/v1/sessions/{sid}", params={"purge": "true"}, timeout=60)
    gwapi.delete(f"{base}/api/v1/video-sets/{SET}", timeout=10)


def iso_ns(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


def assert_hits_shape(hits: list[dict]) -> None:
    assert hits and all(a["score"] >= b["score"] for a, b in itertools.pairwise(hits))
    for h in hits:
        assert set(h) == {"session_id", "global_id", "cameras", "first_seen", "last_seen", "score", "thumbnail"}
        assert h["first_seen"].endswith("Z") and h["last_seen"].endswith("Z")  # spoton.timeutil.ns_to_iso
        assert h["cameras"] and -1.0 <= h["score"] <= 1.0 and iso_ns(h["first_seen"]) <= iso_ns(h["last_seen"])
        assert h["thumbnail"] == f"/api/v1/tracking/{h['session_id']}/persons/{h['global_id']}/thumbnail.jpg"


def test_search_by_a_known_person(searchable, stack) -> None:  # type: ignore[no-untyped-def]
    """Persons of A searched by (session, global_id): hits from A and B, never the person itself, each with ISO
    times matching the persons list and a thumbnail URL that serves a real crop from one of its cameras."""
    sid_a, sid_b, _ = searchable
    base = stack.gateway_url
    deadline = time.monotonic() + 20
    while not (persons := gwapi.get(f"{base}/api/v1/tracking/{sid_a}/persons", timeout=10).json()["persons"]):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    person = max(persons, key=lambda p: iso_ns(p["last_seen"]) - iso_ns(p["first_seen"]))
    query = {"video_set": SET, "session_id": sid_a, "global_id": person["global_id"], "k": 100}
    r = gwapi.post(base + URL, json=query, timeout=30)
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["video_set"] == SET and reply["index_kind"] == "flat"
    hits = reply["hits"]
    assert_hits_shape(hits)
    assert reply["indexed_persons"] >= len(hits) + 1  # every hit, and the person searched for
    keys = {(h["session_id"], h["global_id"]) for h in hits}
    assert (sid_a, person["global_id"]) not in keys
    assert {sid_a, sid_b} <= {h["session_id"] for h in hits}
    # The same person as the persons list knows it: first/last seen agree (media time, within a step).
    listed = {p["global_id"]: p for p in persons}
    for h in (h for h in hits if h["session_id"] == sid_a and h["global_id"] in listed):
        assert abs(iso_ns(h["first_seen"]) - iso_ns(listed[h["global_id"]]["first_seen"])) <= 1e9
        assert set(h["cameras"]) <= {"cam1", "cam2"}
    # k is honoured; the best hits come first (persons of equal score may come in either order).
    top = gwapi.post(base + URL, json=query | {"k": 3}, timeout=30).json()["hits"]
    assert np.allclose([h["score"] for h in top], [h["score"] for h in hits[:3]], atol=1e-4)
    assert {(h["session_id"], h["global_id"]) for h in top} <= keys
    # The thumbnail URL of a hit serves that person's crop.
    served = 0
    for h in hits[:4]:
        t = gwapi.get(base + h["thumbnail"], timeout=10)
        assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg", t.text
        crop = cv2.imdecode(np.frombuffer(t.content, np.uint8), cv2.IMREAD_COLOR)
        assert crop is not None and crop.shape[0] >= 16 and crop.shape[1] >= 8
        assert t.headers["x-camera-id"] in h["cameras"]
        served += 1
    assert served == min(4, len(hits))


def gt_crop(demo_dir: Path, camera: str, frame: int) -> bytes:
    """A JPEG of the least occluded ground-truth person of ``camera``'s frame ``frame`` (1-based)."""
    vs = load_video_set(demo_dir / "demo.yaml")
    cap = cv2.VideoCapture(vs.source_uri(vs.camera(camera)))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame - 1)
    ok, image = cap.read()
    cap.release()
    assert ok
    gt = load_mot(demo_dir / "gt" / f"{camera}.txt")
    rows = gt[(gt[:, 0] == frame) & (gt[:, 6] == 1)]
    xyxy = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]])
    crops = [c for k in range(len(rows)) if (c := person_crop(image, xyxy, k)) is not None]
    assert crops, f"no ground-truth person in {camera} frame {frame}"
    return max(crops, key=lambda c: c[1])[0]


def test_search_by_an_uploaded_crop(searchable, stack, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A crop cut from a demo frame (cam3, inside session B's window) at a ground-truth box, uploaded as multipart:
    k hits of the searchable sessions, best first."""
    _, sid_b, _ = searchable
    jpeg = gt_crop(demo_dir, "cam3", 10)
    r = gwapi.post(
        stack.gateway_url + URL,
        data={"video_set": SET, "k": "5"},
        files={"crop": ("person.jpg", jpeg, "image/jpeg")},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 5
    assert_hits_shape(hits)
    assert sid_b in {h["session_id"] for h in hits}
    # The same crop again: the same answer (the index is not changed by searching).
    again = gwapi.post(
        stack.gateway_url + URL, data={"video_set": SET, "k": "5"}, files={"crop": ("p.jpg", jpeg)}, timeout=60
    )
    assert [(h["session_id"], h["global_id"]) for h in again.json()["hits"]] == [
        (h["session_id"], h["global_id"]) for h in hits
    ]


def test_bad_searches_get_json_errors(searchable, stack, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """400 bad body or image, 413 a crop over the limit, 404 unknown person or video set, 403 a set that has not
    opted in; always the JSON error body."""
    sid_a, _, _ = searchable
    url = stack.gateway_url + URL
    jpeg = gt_crop(demo_dir, "cam1", 5)
    ok = {"video_set": SET, "session_id": sid_a, "global_id": 1}
    cases = [
        (dict(json={"video_set": SET}), 400, "invalid_argument"),
        (dict(json=ok | {"global_id": 0}), 400, "invalid_argument"),
        (dict(json=ok | {"global_id": "1"}), 400, "invalid_argument"),
        (dict(json=ok | {"k": 1000}), 400, "invalid_argument"),  # reid_svc: k in 1..100
        (dict(json=ok | {"k": 0}), 400, "invalid_argument"),
        (dict(json=ok | {"extra": 1}), 400, "invalid_argument"),
        (dict(json=[1, 2]), 400, "invalid_argument"),
        (dict(content=b"{not json", headers={"content-type": "application/json"}), 400, "invalid_argument"),
        (dict(content=b"hello", headers={"content-type": "text/plain"}), 400, "invalid_argument"),
        (dict(data={"video_set": SET}, files={"other": ("x.jpg", jpeg)}), 400, "invalid_argument"),
        (dict(data={"video_set": SET, "k": "many"}, files={"crop": ("x.jpg", jpeg)}), 400, "invalid_argument"),
        (dict(data={"k": "3"}, files={"crop": ("x.jpg", jpeg)}), 400, "invalid_argument"),
        (dict(data={"video_set": SET}, files={"crop": ("x.jpg", b"not a jpeg")}), 400, "invalid_argument"),
        (dict(data={"video_set": SET}, files={"crop": ("x.jpg", jpeg[:3] + b"\x00" * 64)}), 400, "invalid_argument"),
        (
            dict(data={"video_set": SET}, files={"crop": ("x.jpg", jpeg[:3] + bytes(MAX_CROP_BYTES))}),
            413,
            "too_large",
        ),
        (dict(json=ok | {"global_id": 999_999}), 404, "not_found"),
        (dict(json=ok | {"session_id": "no-such-session"}), 404, "not_found"),
        (dict(json=ok | {"video_set": "nosuch"}), 404, "not_found"),
        (dict(json=ok | {"video_set": "demo"}), 403, "person_search_disabled"),
        (dict(data={"video_set": "demo"}, files={"crop": ("x.jpg", jpeg)}), 403, "person_search_disabled"),
    ]
    for kwargs, status, code in cases:
        r = gwapi.post(url, timeout=60, **kwargs)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (kwargs.get("json"), r.text)


def test_only_sessions_of_an_opted_in_set_are_kept_for_search(searchable, stack, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """The gateway sends the set's choice in AssociateStart: A and B have rows in search_persons (under their set),
    C (the demo set, not opted in) has none and its persons are not found."""
    sid_a, sid_b, sid_c = searchable
    with psycopg.connect(database_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT session_id, count(*) FROM search_persons WHERE session_id = ANY(%s) AND video_set = %s"
                " GROUP BY session_id",
                ([sid_a, sid_b, sid_c], SET),
            ).fetchall()
        )
        anywhere = conn.execute("SELECT count(*) FROM search_persons WHERE session_id = %s", (sid_c,)).fetchone()[0]
    assert rows.get(sid_a, 0) > 0 and rows.get(sid_b, 0) > 0 and anywhere == 0
    r = gwapi.post(stack.gateway_url + URL, json={"video_set": SET, "session_id": sid_c, "global_id": 1}, timeout=30)
    assert r.status_code == 404, r.text


def fresh_gateway(stack, database_url: str, demo_dir: Path, headers: dict | None = None):  # type: ignore[no-untyped-def]
    """A gateway app of its own (no Redis; the test stack's keys): it never ran, nor heard of, the stack's
    sessions. Its client sends ``headers`` (default: the admin key)."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.config import GatewaySettings

    addrs = {f"{n}_svc_addr": stack.addr(n) for n in ("detection", "tracking", "reid", "mapping", "analytics")}
    settings = GatewaySettings(
        api_keys=AUTH_ENV["API_KEYS"],
        service_key=SERVICE_KEY,
        database_url=database_url,
        video_sets_dir=str(demo_dir),
        **addrs,
    )
    return TestClient(create_app(settings), headers=dict(AUTH if headers is None else headers))


def test_hit_thumbnails_from_a_gateway_that_never_ran_the_session(searchable, stack, database_url, demo_dir) -> None:  # type: ignore[no-untyped-def]
    """Search hits from past sessions keep a working thumbnail: the route asks reid, which keeps a searchable
    person's crop, even on a gateway that does not know the session (another replica, a restart)."""
    _, sid_b, _ = searchable
    with fresh_gateway(stack, database_url, demo_dir) as client:
        assert client.get(f"/api/v1/sessions/{sid_b}").status_code == 404  # unknown to this gateway
        gid = gwapi.get(f"{stack.gateway_url}/api/v1/tracking/{sid_b}/persons", timeout=10).json()["persons"][0]
        r = client.post(URL, json={"video_set": SET, "session_id": sid_b, "global_id": gid["global_id"], "k": 3})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert hits, r.text  # the thumbnails of real hits are what this test is about
        for h in hits:
            t = client.get(h["thumbnail"])
            assert t.status_code == 200 and t.content[:2] == b"\xff\xd8", t.text
        assert client.get(f"/api/v1/tracking/{sid_b}/persons/999999/thumbnail.jpg").status_code == 404
        assert client.get("/api/v1/tracking/no-such-session/persons/1/thumbnail.jpg").status_code == 404


def test_a_purged_session_is_not_searchable(searchable, stack, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Purge (privacy) takes a session's persons out of search: its persons are unknown, other sessions' hits no
    longer name it, and its rows in search_persons are gone. Runs last: it purges session A."""
    sid_a, sid_b, _ = searchable
    base = stack.gateway_url
    gid_b = gwapi.get(f"{base}/api/v1/tracking/{sid_b}/persons", timeout=10).json()["persons"][0]["global_id"]
    query_b = {"video_set": SET, "session_id": sid_b, "global_id": gid_b, "k": 100}
    before = gwapi.post(base + URL, json=query_b, timeout=30)
    assert before.status_code == 200, before.text
    gid_a = next(h["global_id"] for h in before.json()["hits"] if h["session_id"] == sid_a)
    r = gwapi.delete(f"{base}/api/v1/sessions/{sid_a}", params={"purge": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    gone = gwapi.post(base + URL, json={"video_set": SET, "session_id": sid_a, "global_id": gid_a}, timeout=30)
    assert gone.status_code == 404, gone.text
    after = gwapi.post(base + URL, json=query_b, timeout=30)
    after_hits = after.json()["hits"]
    assert after.status_code == 200 and after_hits and sid_a not in {h["session_id"] for h in after_hits}
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM search_persons WHERE session_id = %s", (sid_a,)).fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM search_persons WHERE session_id = %s", (sid_b,)).fetchone()[0]
    assert left == 0 and kept > 0


def test_search_is_for_operators(stack, database_url: str, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Person search answers biometric questions: operators and admins only (viewers 403, no key 401)."""
    body = {"video_set": "demo", "session_id": "s", "global_id": 1}
    with fresh_gateway(stack, database_url, demo_dir, headers={}) as client:
        denied = client.post(URL, json=body)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthenticated"
        assert client.post(URL, json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        viewer = client.post(URL, json=body, headers={"X-API-Key": VIEWER_KEY})
        assert viewer.status_code == 403 and viewer.json()["error"]["code"] != "person_search_disabled", viewer.text
        for key in (OPERATOR_KEY, ADMIN_KEY):  # let through: refused only because "demo" has not opted in
            allowed = client.post(URL, json=body, headers={"X-API-Key": key})
            assert allowed.status_code == 403 and allowed.json()["error"]["code"] == "person_search_disabled"
