"""The identity-embedding budget through the real stack: with ByteTrack (the default) reid computes no tracking
embeddings at all and far fewer identity embeddings than there are tracked detections, counted by reid itself
(``spoton_reid_embedded_crops_total``), while every track still gets a global ID; ``every`` embeds each one."""

from __future__ import annotations

import asyncio
import re

from tests.conftest import gwapi
from tests.test_e2e import record

STEPS = 21  # three seconds at 7 fps: births, then a refresh of clean tracks every second


def embedded_crops(stack) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Crops reid has embedded so far, per purpose."""
    text = gwapi.get(f"http://127.0.0.1:{stack.metrics_ports['reid']}/metrics", timeout=5).text
    found = re.findall(r'spoton_reid_embedded_crops_total\{purpose="(\w+)"\} (\S+)', text)
    return {"tracking": 0.0, "identity": 0.0} | {k: float(v) for k, v in found}


def run_session(stack, options: dict) -> tuple[dict, list[dict], dict[str, float]]:  # type: ignore[no-untyped-def]
    before = embedded_crops(stack)
    body = {"video_set": "demo", "options": {"max_steps": STEPS, **options}}
    r = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", timeout=30, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}"))
    summary = gwapi.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=10).json()
    assert summary["status"] == "finished" and summary["steps"] == STEPS
    after = embedded_crops(stack)
    return summary, [m for m in messages if m["type"] == "step"], {k: after[k] - before[k] for k in after}


def test_identity_embeddings_are_spent_per_track_under_the_budget(stack) -> None:  # type: ignore[no-untyped-def]
    summary, steps, crops = run_session(stack, {})
    ie = summary["identity_embeddings"]
    assert ie["mode"] == "budget"
    # What reid computed is what the gateway asked for: identity crops only, none for ByteTrack.
    assert crops["tracking"] == 0
    assert crops["identity"] == ie["embedded"] > 0
    # ~12 tracked people a step over four cameras; the budget embeds births and a refresh every 1 s: well under a
    # third of the tracked detections (embedding every detection, as before, would be all of them).
    assert ie["candidates"] >= 8 * STEPS
    assert ie["embedded"] < ie["candidates"] / 3
    tracks = [t for m in steps for c in m["cameras"].values() for t in c["tracks"]]
    assert tracks and all(t["global_id"] for t in tracks)
    # Association still joins the same person across cameras (fewer global ids than camera tracks).
    local = {(cam, t["track_id"]) for m in steps for cam, c in m["cameras"].items() for t in c["tracks"]}
    assert len({t["global_id"] for t in tracks}) < len(local)

    every, _, crops_every = run_session(stack, {"identity_embedding": {"mode": "every"}})
    assert crops_every["tracking"] == 0
    every_ie = every["identity_embeddings"]
    assert crops_every["identity"] == every_ie["embedded"] == every_ie["candidates"]
    assert ie["embedded"] < crops_every["identity"] / 3


def test_a_tracker_that_uses_embeddings_gets_them_per_detection(stack) -> None:  # type: ignore[no-untyped-def]
    summary, steps, crops = run_session(stack, {"tracker": "botsort"})
    assert crops["tracking"] > crops["identity"] > 0
    assert crops["identity"] == summary["identity_embeddings"]["embedded"]
    assert all(t["global_id"] for m in steps for c in m["cameras"].values() for t in c["tracks"])


def test_bad_budget_options_are_refused(stack) -> None:  # type: ignore[no-untyped-def]
    for bad in ({"mode": "sometimes"}, {"every_s": -1}, {"max_covered": 2}, {"often": 1}):
        body = {"video_set": "demo", "options": {"max_steps": 1, "identity_embedding": bad}}
        r = gwapi.post(f"{stack.gateway_url}/api/v1/sessions/", timeout=30, json=body)
        assert r.status_code in (400, 422), (bad, r.text)
        assert "error" in r.json()
