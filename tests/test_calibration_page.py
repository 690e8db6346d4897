"""Calibration versions over REST, and the calibration page in a real browser (Debian's Chromium driven by
Playwright): points clicked on a frame, floor points typed or clicked on the plan, per-point errors and the grid
before saving, save, roll back."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spoton.launcher import REPO, Stack
from tests.conftest import OPERATOR_KEY, gwapi, require
from tests.test_mapping import forget_calibrations
from tests.test_sites import site_doc

CHROMIUM = shutil.which("chromium")
ARTIFACTS = REPO / "build" / "artifacts"
# Image points (px) inside the demo cameras' 640 x 480 frames.
IMAGE = [(100.0, 420.0), (560.0, 440.0), (520.0, 250.0), (140.0, 230.0), (330.0, 330.0)]


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) image px -> floor m through a 3x3 homography."""
    p = np.c_[pts, np.ones(len(pts))] @ h.T
    return p[:, :2] / p[:, 2:]


@pytest.fixture
def site(stack: Stack, demo_dir: Path, database_url: str) -> Iterator[str]:
    """A throwaway video set (one camera "door" on the demo's cam1.mp4, calibrated by homography: version 1)."""
    name = f"cal-{uuid.uuid4().hex[:6]}"
    r = gwapi.post(stack.gateway_url + "/api/v1/video-sets/", json=site_doc(demo_dir, name), timeout=30)
    assert r.status_code == 201, r.text
    yield name
    gwapi.delete(f"{stack.gateway_url}/api/v1/video-sets/{name}", timeout=10)
    forget_calibrations(database_url, name, "door")


def test_calibration_versions_over_rest(stack: Stack, site: str) -> None:
    base = f"{stack.gateway_url}/api/v1/video-sets/{site}/cameras/door/calibration"
    v1 = gwapi.get(base, timeout=10).json()
    h1 = np.array(v1["homography"])
    floor = apply_h(h1, np.array(IMAGE)) + np.array([1.5, 0.0])
    pairs = [{"image": list(i), "floor": f.tolist()} for i, f in zip(IMAGE, floor, strict=True)]
    # Preview: per-point errors and the grid as image polylines, nothing stored.
    pre = gwapi.post(f"{base}/preview", json={"points": pairs, "image_size": [768, 576]}, timeout=10)
    assert pre.status_code == 200, pre.text
    body = pre.json()
    assert len(body["errors_m"]) == 5 and max(body["errors_m"]) < 1e-3
    kinds = {p["kind"] for p in body["figure"]}
    assert {"grid", "grid5", "zone"} <= kinds and all(len(p["points"]) >= 2 for p in body["figure"])
    assert [v["version"] for v in gwapi.get(f"{base}/versions", timeout=10).json()["versions"]] == [1]
    saved = gwapi.put(base, json={"points": pairs}, timeout=10).json()["calibration"]
    assert saved["version"] == 2 and saved["created_at"].endswith("Z")
    listed = gwapi.get(f"{base}/versions", timeout=10).json()
    assert listed["current"] == 2 and [v["source"] for v in listed["versions"]] == ["api", "api"]
    assert gwapi.get(base, params={"version": 1}, timeout=10).json()["homography"] == v1["homography"]
    back = gwapi.post(f"{base}/versions/1/rollback", timeout=10).json()["calibration"]
    assert (back["version"], back["source"], back["restored_from"]) == (3, "rollback", 1)
    assert gwapi.get(base, timeout=10).json()["homography"] == v1["homography"]
    for bad, status in (
        (gwapi.get(base, params={"version": 9}, timeout=10), 404),
        (gwapi.get(base, params={"version": -1}, timeout=10), 422),
        (gwapi.post(f"{base}/versions/9/rollback", timeout=10), 404),
        (gwapi.post(f"{base}/versions/0/rollback", timeout=10), 422),
        (gwapi.post(f"{base}/preview", json={"points": pairs, "image_size": [0, 5]}, timeout=10), 400),
        (gwapi.post(f"{base}/preview", json={"points": pairs[:3], "image_size": [768, 576]}, timeout=10), 400),
        (gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/{site}/cameras/nope/calibration/versions"), 404),
        (gwapi.get(f"{base}/frame.jpg", params={"frame": 0}, timeout=10), 400),
    ):
        assert bad.status_code == status, bad.text
        assert "error" in bad.json()
    frame = gwapi.get(f"{base}/frame.jpg", timeout=10)
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    v2 = gwapi.get(f"{base}/overlay.png", params={"version": 2}, timeout=30)
    current = gwapi.get(f"{base}/overlay.png", timeout=30)
    assert v2.status_code == 200 and v2.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert v2.content != current.content  # version 2's grid, not the current (rolled back) one


# The page's state, read back: each row's class and error text, and how many pixels of the frame canvas differ from
# the bare frame (the preview's grid, zones and the point markers drawn over it).
PAGE_JS = """() => {
  const rows = [...document.querySelectorAll("#points tbody tr")];
  const c = document.getElementById("image"), px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const bare = document.createElement("canvas"); bare.width = c.width; bare.height = c.height;
  const g = bare.getContext("2d"); g.drawImage(frameImage, 0, 0);
  const raw = g.getImageData(0, 0, c.width, c.height).data;
  let drawn = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (Math.abs(px[i] - raw[i]) + Math.abs(px[i + 1] - raw[i + 1]) + Math.abs(px[i + 2] - raw[i + 2]) > 60) drawn++;
  }
  return {rows: rows.map((r) => [r.className, r.querySelector("td.error").textContent]),
          errorColour: rows.length ? getComputedStyle(rows[rows.length - 1].querySelector("td.error")).color : "",
          drawn, pairs: pairs.map((p) => p.image)};
}"""


def wait_for(page: Any, condition: str, timeout_ms: int = 20_000) -> None:
    """``page.wait_for_function`` that, on a timeout, fails with the page's rows, floor points and status line."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=timeout_ms)
    except PlaywrightTimeout:
        state = page.evaluate(
            "() => ({rows: [...document.querySelectorAll('#points tbody tr')].map((r) => [r.className,"
            " r.querySelector('td.error').textContent]), floors: pairs.map((p) => p.floor),"
            " status: document.getElementById('status').textContent})"
        )
        pytest.fail(f"the calibration page did not reach `{condition}` in {timeout_ms} ms: {state}")


def test_calibration_page_saves_and_rolls_back(stack: Stack, site: str) -> None:
    require(CHROMIUM, "Debian's chromium", "apt-get install -y chromium (.ci/run does it)")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    require(sync_api, "playwright (Python package)", "pip install -e '.[dev]' (make install)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = f"{stack.gateway_url}/api/v1/video-sets/{site}/cameras/door/calibration"
    h1 = np.array(gwapi.get(base, timeout=10).json()["homography"])
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Logged in as an operator (the role calibration needs), as the page's key box would store it.
        page.add_init_script(f"sessionStorage.setItem('spoton.credential', '{OPERATOR_KEY}')")
        page.goto(f"{stack.gateway_url}/calibrate.html?video_set={site}&camera=door")
        page.wait_for_function("document.querySelectorAll('#versions tbody tr').length === 1", timeout=30_000)
        page.wait_for_function("viewVersion === 1", timeout=30_000)
        canvas = page.locator("#image")
        size = page.evaluate("() => { const c = document.getElementById('image'); return [c.width, c.height]; }")
        box = canvas.bounding_box()
        assert box is not None
        for x, y in IMAGE:
            canvas.click(position={"x": x * box["width"] / size[0], "y": y * box["height"] / size[1]})
        clicked = np.array(page.evaluate(PAGE_JS)["pairs"])
        assert clicked.shape == (5, 2) and np.abs(clicked - np.array(IMAGE)).max() < 1.5
        # The floor points of a calibration moved 1.5 m east of version 1, typed in metres key by key, each field left
        # with Tab. Before Tab the page redraws (what a preview answer landing mid-typing does): the field being typed
        # keeps its text and the focus (a rebuilt table dropped the focus, so Tab went back to the page's top).
        wanted = apply_h(h1, clicked) + np.array([1.5, 0.0])
        for i, (fx, fy) in enumerate(wanted):
            for cls, value in (("floorx", fx), ("floory", fy)):
                page.locator(f"#points tbody tr:nth-child({i + 1}) input.{cls}").click()
                page.keyboard.type(f"{value:.4f}")
                kept = page.evaluate(
                    "() => { render(); const a = document.activeElement; return [a.className, a.value]; }"
                )
                assert kept == [cls, f"{value:.4f}"], (i, kept)
                page.keyboard.press("Tab")
        wait_for(page, "[...document.querySelectorAll('#points tbody tr')].every((r) => r.className === 'good')")
        # A sixth image point whose floor point is clicked on the plan's far corner: deliberately wrong.
        canvas.click(position={"x": 300 * box["width"] / size[0], "y": 400 * box["height"] / size[1]})
        page.locator("#plan").click(position={"x": 8, "y": 8})
        wait_for(page, "document.querySelectorAll('#points tbody tr')[5]?.className === 'bad'")
        state = page.evaluate(PAGE_JS)
        page.screenshot(path=str(ARTIFACTS / "calibrate-bad-point.png"), full_page=True)
        bad_error = float(state["rows"][5][1].split()[0])
        good_errors = [float(r[1].split()[0]) for r in state["rows"][:5]]
        # Measured: the good rows 0.000 m, the wrong one tens of metres (an outlier of the RANSAC fit), drawn red.
        assert bad_error > 5.0 and max(good_errors) < 0.05, state
        assert state["errorColour"] == "rgb(255, 85, 85)", state
        # The unsaved fit's grid over the frame: measured 31435 changed pixels, 10% of the frame; the six point
        # markers alone are ~0.2%.
        assert state["drawn"] > 0.03 * size[0] * size[1], state
        # Drop the wrong pair, save: GET …/calibration is now version 2 with the typed points.
        page.locator("#points tbody tr:nth-child(6) button").click()
        wait_for(page, "!document.getElementById('save').disabled")
        page.click("#save")
        page.wait_for_function("document.querySelectorAll('#versions tbody tr').length === 2", timeout=20_000)
        page.wait_for_function("viewVersion === 2", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "calibrate-saved.png"), full_page=True)
        assert page.inner_text("#showing") == "showing stored version 2's grid"
        current = gwapi.get(base, timeout=10).json()
        assert current["version"] == 2 and current["source"] == "api"
        moved = apply_h(np.array(current["homography"]), clicked)
        np.testing.assert_allclose(moved, wanted, atol=0.01)
        assert not np.allclose(apply_h(h1, clicked), moved, atol=1.0)
        # Roll back to version 1 from the list: a third version, equal to the first, is current.
        page.click("#versions tr[data-version='1'] button.rollback")
        page.wait_for_function("document.querySelectorAll('#versions tbody tr').length === 3", timeout=20_000)
        page.wait_for_function("viewVersion === 3", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "calibrate-rolled-back.png"), full_page=True)
        assert "version 1 is current again" in page.inner_text("#status")
        restored = gwapi.get(base, timeout=10).json()
        assert (restored["version"], restored["source"], restored["restored_from"]) == (3, "rollback", 1)
        np.testing.assert_allclose(np.array(restored["homography"]), h1)
        browser.close()
    assert errors == []
