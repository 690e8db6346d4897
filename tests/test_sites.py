"""Sites managed over REST (video sets stored in the database, sources confined), and always-on sessions that
survive a gateway restart."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import yaml

from spoton.launcher import Stack
from tests.conftest import gwapi


def site_doc(demo_dir: Path, name: str) -> dict:
    demo = yaml.safe_load((demo_dir / "demo.yaml").read_text())
    cam1 = next(c for c in demo["cameras"] if c["id"] == "cam1")
    return {
        "name": name,
        "floor": demo["floor"],
        "cameras": [{"id": "door", "source": "cam1.mp4", "fps": 7.0, "homography": cam1["homography"]}],
        "zones": [{"id": "hall", "polygon": [[-5, -5], [5, -5], [5, 5], [-5, 5]]}],
    }


def test_video_sets_over_rest(stack: Stack, demo_dir: Path) -> None:
    api = stack.gateway_url + "/api/v1/video-sets/"
    name = f"shop-{uuid.uuid4().hex[:6]}"
    doc = site_doc(demo_dir, name)
    r = gwapi.post(api, json=doc, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["cameras"][0] == {"id": "door", "source": "cam1.mp4", "fps": 7.0, "calibrated": True}
    assert name in {v["name"] for v in gwapi.get(api, timeout=10).json()["video_sets"]}
    assert gwapi.post(api, json=doc, timeout=10).status_code == 409
    # Its calibration went to mapping_svc, so a session projects onto the floor right away.
    cal = gwapi.get(f"{api}{name}/cameras/door/calibration", timeout=10).json()
    assert cal["source"] == "api"
    body = {"video_set": name, "options": {"max_steps": 5}}
    sid = gwapi.post(stack.gateway_url + "/api/v1/sessions/", json=body, timeout=30).json()["session_id"]
    deadline = time.monotonic() + 60
    while (s := gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json())["status"] != "finished":
        assert time.monotonic() < deadline, s
        time.sleep(0.3)
    latest = gwapi.get(f"{stack.gateway_url}/api/v1/tracking/{sid}", timeout=10).json()
    assert any(t["floor"] for t in latest["cameras"]["door"]["tracks"])
    # Changed in place; the name must match; a YAML set cannot be changed here.
    doc["zones"].append({"id": "till", "polygon": [[0, 0], [1, 0], [1, 1]]})
    assert [z["id"] for z in gwapi.put(api + name, json=doc, timeout=10).json()["zones"]] == ["hall", "till"]
    assert gwapi.put(api + name, json={**doc, "name": "other"}, timeout=10).status_code == 400
    assert gwapi.put(api + "demo", json={**doc, "name": "demo"}, timeout=10).status_code == 409
    assert gwapi.delete(api + "demo", timeout=10).status_code == 409
    # Sources outside the video-set directory, or with other schemes, are refused.
    for bad in ("../../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "gopher://x/y"):
        evil = {**doc, "name": f"evil-{uuid.uuid4().hex[:4]}", "cameras": [{"id": "c", "source": bad}]}
        r = gwapi.post(api, json=evil, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", (bad, r.text)
    assert gwapi.post(api, json={"name": "x"}, timeout=10).status_code == 400
    assert gwapi.post(api, content=b"{not json", timeout=10).status_code == 422
    assert gwapi.delete(api + name, timeout=10).json() == {"deleted": name}
    assert gwapi.get(api + name, timeout=10).status_code == 404
    assert gwapi.delete(api + name, timeout=10).status_code == 404


def test_video_set_calibrated_by_point_pairs(stack: Stack, demo_dir: Path) -> None:
    """A camera calibrated by image/floor point pairs (instead of a homography) reaches mapping_svc as such."""
    api = stack.gateway_url + "/api/v1/video-sets/"
    name = f"pairs-{uuid.uuid4().hex[:6]}"
    doc = site_doc(demo_dir, name)
    h = np.array(doc["cameras"][0].pop("homography"), float)
    image = np.array([[100.0, 400.0], [500.0, 400.0], [500.0, 250.0], [100.0, 250.0], [300.0, 320.0]])
    floor = np.c_[image, np.ones(len(image))] @ h.T
    floor = floor[:, :2] / floor[:, 2:]
    pairs = zip(image.tolist(), floor.tolist(), strict=True)
    doc["cameras"][0]["points"] = [{"image": i, "floor": f} for i, f in pairs]
    r = gwapi.post(api, json=doc, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["cameras"][0]["calibrated"] is True
    cal = gwapi.get(f"{api}{name}/cameras/door/calibration", timeout=10).json()
    assert cal["source"] == "api" and len(cal["points"]) == len(image)
    assert np.allclose(np.array(cal["homography"]) / cal["homography"][2][2], h / h[2, 2], rtol=1e-3, atol=1e-3)
    assert gwapi.delete(api + name, timeout=10).json() == {"deleted": name}


def test_always_on_session_survives_a_gateway_restart(stack: Stack) -> None:
    first = stack.start_gateway("gateway-ao1", {"SESSION_HEARTBEAT_S": "1"})
    body = {"video_set": "demo", "cameras": ["cam1"], "options": {"loop": True, "always_on": True}}
    sid = gwapi.post(first + "/api/v1/sessions/", json=body, timeout=30).json()["session_id"]
    second = ""
    try:
        deadline = time.monotonic() + 60
        while gwapi.get(f"{first}/api/v1/sessions/{sid}", timeout=10).json()["steps"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        proc = stack.procs.pop("gateway-ao1")
        proc.terminate()
        proc.wait(30)
        second = stack.start_gateway("gateway-ao2", {"SESSION_HEARTBEAT_S": "1"})
        deadline = time.monotonic() + 60
        while True:
            r = gwapi.get(f"{second}/api/v1/sessions/{sid}", timeout=10)
            if r.status_code == 200 and r.json()["status"] == "running" and r.json()["steps"] >= 2:
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.3)
        # A normal session is not resumed: only always-on ones are.
        listed = gwapi.get(f"{second}/api/v1/sessions/", timeout=10).json()["sessions"]
        assert [s["session_id"] for s in listed] == [sid]
    finally:
        if second:
            assert gwapi.delete(f"{second}/api/v1/sessions/{sid}", timeout=30).json()["status"] == "stopped"
            stack.procs.pop("gateway-ao2").terminate()
