"""The operator's console in a real browser (Debian's Chromium driven by Playwright) against the real stack: the
floor plan's layers share one floor -> pixel transform (bird's-eye mosaic background, figure, people, heatmap), an
operator's merge relabels what the page shows (identity_update), and the timeline's scrubber seeks. Screenshots go
to build/artifacts."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spoton.launcher import REPO, Stack
from tests.conftest import OPERATOR_KEY, gwapi, require

CHROMIUM = shutil.which("chromium")
ARTIFACTS = REPO / "build" / "artifacts"


@pytest.fixture
def browser_page(stack: Stack) -> Iterator:  # type: ignore[type-arg]
    """A Chromium page logged in as an operator (the key stored as the login box stores it); page errors are
    collected in ``page.errors`` and must stay empty."""
    require(CHROMIUM, "Debian's chromium", "apt-get install -y chromium (.ci/run does it)")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    require(sync_api, "playwright (Python package)", "pip install -e '.[dev]' (make install)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1200})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.add_init_script(f"sessionStorage.setItem('spoton.credential', '{OPERATOR_KEY}')")
        yield page
        browser.close()


PROBES = Path(__file__).with_name("console_probes.js")


def heat_cell(h: dict, x: float, y: float) -> float:
    """Presence seconds of the heatmap cell (row 0 at origin_y_m) that holds floor point (x, y) metres."""
    col, row = int((x - h["origin_x_m"]) // h["cell_m"]), int((y - h["origin_y_m"]) // h["cell_m"])
    if not (0 <= row < h["rows"] and 0 <= col < h["cols"]):
        return 0.0
    return float(h["seconds"][row * h["cols"] + col])


def near_edge(h: dict, x: float, y: float) -> bool:
    """Whether floor point (x, y) lies within a tenth of a cell (0.05 m, about a pixel) of a heatmap cell's edge."""
    fx, fy = ((x - h["origin_x_m"]) / h["cell_m"]) % 1, ((y - h["origin_y_m"]) / h["cell_m"]) % 1
    return min(fx, 1 - fx, fy, 1 - fy) < 0.1


def open_looping_session(page, base: str) -> str:  # type: ignore[no-untyped-def]
    """A looping demo session (it runs until deleted, whatever the speed of this machine) shown on the console with
    the test probes loaded; its id."""
    r = gwapi.post(f"{base}/api/v1/sessions/", json={"video_set": "demo", "options": {"loop": True}}, timeout=30)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    page.goto(base + "/")
    page.select_option("#session", sid)
    page.wait_for_function(f"current && current.session_id === '{sid}'", timeout=30_000)
    page.add_script_tag(path=str(PROBES))
    return sid


def test_console_plan_identity_update_and_seek(stack: Stack, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    base = stack.gateway_url
    sid = open_looping_session(page, base)
    try:
        page.evaluate("recordFrames()")
        # Background: the demo set has no floor image, so its four cameras' bird's-eye views make the mosaic.
        page.wait_for_function("plan && plan.backgroundKind !== 'none'", timeout=60_000)
        # identity_update: with two people on the plan, pause, merge the second into the first through the API
        # (an operator's correction; the gateway sends identity_update), and the page relabels dot, trail, chips.
        page.wait_for_function("present.size >= 2", timeout=120_000)
        page.click("#pause")
        page.wait_for_timeout(1500)  # steps already in the pipeline arrive
        before = page.evaluate("probePeople()")
        ids = sorted(before["present"])
        into, source = ids[0], ids[1]
        assert page.evaluate(
            f"[...document.querySelectorAll('#tiles .chip')].some((c) => c.dataset.gid === '{source}')"
        )
        page.screenshot(path=str(ARTIFACTS / "console-before-merge.png"), full_page=True)
        m = gwapi.post(f"{base}/api/v1/tracking/{sid}/persons/merge", json={"into": into, "from": source}, timeout=30)
        assert m.status_code == 200, m.text
        changes = m.json()["changes"]
        assert changes and {(c["from_global_id"], c["to_global_id"], c["reason"]) for c in changes} == {
            (source, into, "merge")
        }
        page.wait_for_function(f"!trails.has({source}) && present.has({into})", timeout=30_000)
        after = page.evaluate("probePeople()")
        assert source not in after["trails"] and source not in after["present"], after
        gone = next(d for d in before["dots"] if d["id"] == source)
        assert gone["pixels"] >= 40, before  # its dot was drawn before the merge...
        by_id = {d["id"]: d for d in after["dots"]}
        assert by_id[into]["pixels"] >= 40 and by_id[into]["centre"] == by_id[into]["colour"], after
        # ...and nothing of its colour is left (dots and tiles' chips relabelled, events too).
        recount = page.evaluate(f"personTrace({source})")
        assert recount == {"pixels": 0, "labels": 0}, recount
        assert any(f"person {source} is now person {into}" in t for t in page.locator("#events li").all_inner_texts())
        page.screenshot(path=str(ARTIFACTS / "console-after-merge.png"), full_page=True)

        # Seek: the scrubber (a file session) sends the session 35 frames away; after resume the frames shown jump
        # there (steps run 1 frame apart otherwise, and the loop's wrap lands on frame 1).
        page.wait_for_function("!document.getElementById('timeline').classList.contains('hidden')", timeout=10_000)
        assert page.get_attribute("#scrub", "max") == "80"
        n = page.evaluate("framesSeen.length")
        last = page.evaluate("framesSeen[framesSeen.length - 1]")
        target = last + 35 if last + 35 <= 78 else last - 35
        page.evaluate(f"scrubTo({target})")
        page.wait_for_timeout(500)
        page.click("#resume")
        page.wait_for_function(f"framesSeen.slice({n}).some((f) => f >= {target} && f <= {target + 3})", timeout=60_000)
        frames = page.evaluate("framesSeen.slice()")
        landed = [
            k
            for k in range(max(n, 1), len(frames))
            if target <= frames[k] <= target + 3 and abs(frames[k] - frames[k - 1]) >= 20
        ]
        assert landed, (last, target, frames[n - 3 :])
        assert page.inner_text("#frame-label").startswith("frame ") and " / 80 · " in page.inner_text("#frame-label")

        # The heatmap layer, toggled on once the history has cells: the same floor points land on the same pixels as
        # the plan's figure and people (zone corners and line ends, every cell's centre, each person's last point).
        page.check("#heat-toggle")
        page.wait_for_function(
            "plan.heatData && plan.heatData.seconds.filter((v) => v > 0).length >= 20", timeout=90_000
        )
        page.click("#pause")
        page.wait_for_timeout(1500)

        def settled() -> dict | None:
            """The layers once the history holds the last step (the writer flushes in batches): every person's last
            point, away from a cell edge, in a cell with presence."""
            layers = page.evaluate("refreshAnalytics().then(() => probeLayers())")
            inner = [p for p in layers["points"] if not near_edge(layers["heatmap"], *p["floor"])]
            return layers if inner and all(heat_cell(layers["heatmap"], *p["floor"]) > 0 for p in inner) else None

        layers = wait_until(settled, timeout_s=90, every_s=2)
        page.screenshot(path=str(ARTIFACTS / "console-heatmap-layer.png"), full_page=True)
        assert layers["kind"] == "birdseye", layers["kind"]
        # Measured: the four warped views cover 0.4 of the floor rectangle (the rest is out of every camera's view).
        assert layers["mosaicShare"] > 0.2, layers["mosaicShare"]
        # Zone outlines #5c5 and lines #f90 (the grid under them is white at alpha 0.09-0.28: at most 71).
        assert min(layers["zoneCorners"]) > 150 and min(layers["lineEnds"]) > 150, layers
        assert layers["cells"] >= 20 and layers["wrong"] == 0, {k: layers[k] for k in ("cells", "wrong")}
        assert layers["empty"] > 0 and layers["emptyWrong"] == 0
        h = layers["heatmap"]
        checked = 0
        for pt in layers["points"]:
            x, y = pt["floor"]
            if near_edge(h, x, y):
                continue  # within a pixel or two of a cell edge: either cell may own that pixel
            seconds = heat_cell(h, x, y)  # Python's own lookup of the cell under the person
            expected = page.evaluate(f"heatColour(Math.log1p({seconds}) / {layers['max']})")
            assert pt["dot"] == pt["colour"], pt  # the dot is drawn at this pixel...
            assert seconds > 0 and pt["heat"][3] == 255, (pt, seconds)  # ...over the heat of the person's cell
            assert sum(abs(a - b) for a, b in zip(pt["heat"][:3], expected, strict=True)) <= 3, (pt, expected)
            checked += 1
        assert checked >= 1, layers["points"]
        assert page.is_visible("#plan-heat")
        page.uncheck("#heat-toggle")
        assert page.is_hidden("#plan-heat")
        # The occupancy chart: uPlot with a time axis in local time and a people axis, and a drawn series.
        chart = page.evaluate(
            "() => ({points: occupancyChart.data[0].length, axes: occupancyChart.axes.length,"
            " x: occupancyChart.scales.x.time, people: Math.max(...occupancyChart.data[1])})"
        )
        assert chart["points"] >= 2 and chart["axes"] == 2 and chart["x"] is True and chart["people"] >= 2, chart
        # A video set with a floor image (the "rules" set: demo's cameras, a uniform grey 200 floor.png) gets it as the
        # background instead of the mosaic, over the whole floor rectangle (drawn at alpha 0.8 over #262626: 168).
        page.evaluate("async () => { current = {...current, video_set: 'rules'}; await loadPlan(current); }")
        background = page.evaluate("probeBackground()")
        assert background["kind"] == "image", background
        assert all(abs(v - 168) <= 2 for v in background["centre"][:3]) and background["centre"][3] == 255, background
        # Readable events: "person 7 entered crossing 14:02:11".
        events = page.locator("#events li").all_inner_texts()
        readable = re.compile(r"^person \d+ (entered|left|crossed \((forward|backward)\)) \S+ \d\d:\d\d:\d\d$")
        assert any(readable.match(e) for e in events), events
    finally:
        gwapi.delete(f"{base}/api/v1/sessions/{sid}", timeout=30)
    assert page.errors == []


def persons_by_id(base: str, sid: str) -> dict[int, dict]:
    r = gwapi.get(f"{base}/api/v1/tracking/{sid}/persons", timeout=30)
    assert r.status_code == 200, r.text
    return {p["global_id"]: p for p in r.json()["persons"]}


def wait_until(check, timeout_s: float = 90.0, every_s: float = 1.0):  # type: ignore[no-untyped-def]
    """``check()``'s first truthy value, polled; fails after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, "timed out"
        time.sleep(every_s)


def test_console_person_view_merge_and_undo(stack: Stack, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    base = stack.gateway_url
    sid = open_looping_session(page, base)
    try:
        page.wait_for_function("present.size >= 2 && plan", timeout=120_000)
        page.click("#pause")
        page.wait_for_timeout(1500)  # steps already in the pipeline arrive
        a, b = sorted(page.evaluate("[...present]"))[:2]
        # Both are in the history before the merge (the writer flushes in batches).
        wait_until(lambda: {a, b} <= set(persons_by_id(base, sid)))

        # Click a dot -> the person view, with the person's thumbnail (reid's best crop) and facts.
        page.mouse.click(*page.evaluate(f"dotScreenPoint({a})"))
        page.wait_for_function(
            f"shownPerson === {a} && document.getElementById('person-thumb')?.naturalWidth > 0", timeout=60_000
        )
        facts = page.inner_text("#person-facts")
        assert "cameras" in facts and "first seen" in facts, facts
        page.screenshot(path=str(ARTIFACTS / "console-person-view.png"), full_page=True)

        # Select the two persons, merge through the UI: the page relabels, GET …/persons lists b inside a.
        page.click("#person-select")
        page.mouse.click(*page.evaluate(f"dotScreenPoint({b})"))
        page.wait_for_function(f"shownPerson === {b} && !!document.getElementById('person-select')", timeout=30_000)
        page.click("#person-select")
        assert page.inner_text("#merge") == f"merge {b} into {a}"
        page.click("#merge")
        page.wait_for_function(f"!trails.has({b})", timeout=30_000)
        merged = persons_by_id(base, sid)
        assert b not in merged and b in merged[a]["merged_from"], merged
        page.screenshot(path=str(ARTIFACTS / "console-merged.png"), full_page=True)

        # Undo: b is its own person again in GET …/persons; its tracks leave a as one new person, live.
        page.click("#undo")
        page.wait_for_function(
            "document.getElementById('correction-status').textContent.startsWith('undid the merge')", timeout=30_000
        )
        status = page.inner_text("#correction-status")
        restored = persons_by_id(base, sid)
        assert b in restored and "merged_from" not in restored[a], restored
        new = int(re.search(r"person (\d+) now", status).group(1))
        assert new not in (a, b), status
        page.click("#resume")
        page.wait_for_function(f"present.has({new})", timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "console-undone.png"), full_page=True)
        # Nothing left to undo: the API says so and the page shows it.
        page.click("#undo")
        page.wait_for_function(
            "document.getElementById('correction-status').textContent.startsWith('undo refused')", timeout=30_000
        )
    finally:
        gwapi.delete(f"{base}/api/v1/sessions/{sid}", timeout=30)
    assert page.errors == []
