"""The dashboard in a real browser (Debian's Chromium driven by Playwright): live tiles, floor plan, panel."""

from __future__ import annotations

import shutil
from pathlib import Path

from spoton.launcher import REPO
from tests.conftest import VIEWER_KEY, gwapi, require

CHROMIUM = shutil.which("chromium")
ARTIFACTS = REPO / "build" / "artifacts"

# What the plan and panel show, read back from their canvases (probeFloorPlan, probePanel).
PROBES = Path(__file__).with_name("console_probes.js")


def test_dashboard_shows_live_tracking(stack) -> None:  # type: ignore[no-untyped-def]
    require(CHROMIUM, "Debian's chromium", "apt-get install -y chromium (.ci/run does it)")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    require(sync_api, "playwright (Python package)", "pip install -e '.[dev]' (make install)")
    r = gwapi.post(
        f"{stack.gateway_url}/api/v1/sessions/", json={"video_set": "demo", "options": {"max_steps": 200}}, timeout=30
    )
    sid = r.json()["session_id"]
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(stack.gateway_url + "/")
        # Auth is on: the login box takes a key (a viewer's here); the page then uses headers, tickets, signed URLs.
        page.fill("#credential", VIEWER_KEY)
        page.click("#login button[type=submit]")
        page.select_option("#session", sid)
        # A viewer sees no controls: no pause/resume/stop, no calibration link, no corrections, a read-only timeline.
        page.add_script_tag(path=str(PROBES))
        assert page.is_hidden("#stop") and page.is_hidden("#pause") and page.inner_text("#whoami") == "viewer"
        assert page.is_hidden("a[href='/calibrate.html']") and page.is_hidden("#undo") and page.is_hidden("#merge")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('step')", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 4", timeout=30_000)
        assert "people" in page.inner_text("#status")
        page.wait_for_function("document.querySelectorAll('#tiles img')[0].naturalWidth > 0", timeout=30_000)
        page.wait_for_function("!document.getElementById('timeline').classList.contains('hidden')", timeout=30_000)
        assert page.is_disabled("#scrub")
        # Floor plan: wait until a few people are on it, then read the canvases.
        page.wait_for_function("present.size >= 3", timeout=60_000)
        plan = page.evaluate("probeFloorPlan()")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-viewer.png"), full_page=True)
        # Measured: dots of 112, 105, 110 pixels of their colour (a disc may hide under another one, so three whole
        # dots are asked for); zone outline #5c5 (204) and line #f90 (255) at their points; the 1 m grid under them
        # is white at alpha 0.09-0.28 (at most 71), the empty layer 0.
        assert sum(d >= 40 for d in plan["dots"]) >= 3, plan
        assert plan["zones"] and min(plan["zones"]) > 150, plan
        assert plan["lines"] and min(plan["lines"]) > 150, plan
        # Panel: refreshed every 5 s from the history; wait for the chart's first points and the line table.
        page.wait_for_function(
            "occupancyChart && occupancyChart.data[0].length > 3 && document.querySelectorAll('#lines tr').length > 1",
            timeout=60_000,
        )
        panel = page.evaluate("probePanel()")
        # The chart plots the history's occupancy buckets (the page's bucket width), as the API gives them.
        # The session is live: the chart is read first, and its last two buckets (still filling, or still in the
        # history writer's batch) are left out.
        bucket = page.evaluate("occupancyBucket()")
        chart = page.evaluate("occupancyChart.data")
        rest = gwapi.get(
            f"{stack.gateway_url}/api/v1/analytics/occupancy",
            params={"session_id": sid, "bucket_s": bucket},
            timeout=30,
        ).json()["buckets"]
        n = len(chart[0]) - 2
        assert n >= 2 and chart[0][:n] == [b["start_ns"] / 1e9 for b in rest[:n]]
        assert chart[1][:n] == [b["people"] for b in rest[:n]]
        # Measured: 18 pixels of the series' stroke with two 1 s buckets; one row per line of the demo set (1), the
        # dwell table's three columns.
        assert panel["stroke"] >= 10 and panel["dwell_header"] == 3, panel
        demo_lines = gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/demo/floor", timeout=10).json()["lines"]
        assert demo_lines and panel["lines"] == len(demo_lines), panel
        browser.close()
    gwapi.delete(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=30)
    assert errors == []
