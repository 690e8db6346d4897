"""The dashboard in a real browser (Debian's Chromium driven by Playwright): live tiles, floor plan, panel."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import VIEWER_KEY, gwapi

CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_dashboard_shows_live_tracking(stack) -> None:  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
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
        assert page.is_hidden("#stop") and page.inner_text("#whoami") == "viewer"
        page.wait_for_function("document.getElementById('status').textContent.startsWith('step')", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 4", timeout=30_000)
        assert "people" in page.inner_text("#status")
        page.wait_for_function("document.querySelectorAll('#tiles img')[0].naturalWidth > 0", timeout=30_000)
        browser.close()
    gwapi.delete(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=30)
    assert errors == []
