"""The dashboard in a real browser (Debian's Chromium driven by Playwright): live tiles, floor plan, panel."""

from __future__ import annotations

import shutil

from tests.conftest import VIEWER_KEY, gwapi, require

CHROMIUM = shutil.which("chromium")

# What the floor canvas shows (read back from its pixels): every person of the last step as a dot in its own colour,
# and the demo set's zone outline and counting line (the brightest pixel near a zone corner and a line's middle).
FLOOR_PLAN_JS = """() => {
  const c = document.getElementById("floor"), g = c.getContext("2d");
  const px = g.getImageData(0, 0, c.width, c.height).data, hex = (v) => v.toString(16).padStart(2, "0");
  const at = (x, y) => {
    const i = 4 * (Math.round(y) * c.width + Math.round(x)); return [px[i], px[i + 1], px[i + 2]];
  };
  const count = new Map();
  for (let i = 0; i < px.length; i += 4) {
    const k = "#" + hex(px[i]) + hex(px[i + 1]) + hex(px[i + 2]); count.set(k, (count.get(k) || 0) + 1);
  }
  const dots = [...trails.keys()].map((id) => { g.fillStyle = colour(id); return count.get(g.fillStyle) || 0; });
  // Brightest pixel within 2 px of a point of the plan (the background is #1a1a1a, 26 per channel).
  const f = floor.floor, s = Math.min(c.width / f.width_m, c.height / f.height_m);
  const X = (x) => (x - f.origin_m[0]) * s, Y = (y) => c.height - (y - f.origin_m[1]) * s;
  const lit = (x, y) => { let m = 0; for (let dx = -2; dx <= 2; dx++) for (let dy = -2; dy <= 2; dy++)
    m = Math.max(m, ...at(X(x) + dx, Y(y) + dy)); return m; };
  const zones = floor.zones.map((z) => lit(...z.polygon[0]));
  const lines = floor.lines.map((l) => lit((l.a[0] + l.b[0]) / 2, (l.a[1] + l.b[1]) / 2));
  return {dots, zones, lines};
}"""

# The panel: occupancy bars (#6af), the line-crossings table with a row per line, the heatmap image.
PANEL_JS = """() => {
  const c = document.getElementById("occupancy"), px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let bars = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] === 0x66 && px[i + 1] === 0xaa && px[i + 2] === 0xff) bars++;
  return {bars, lines: document.querySelectorAll("#lines tr").length - 1,
          dwell_header: document.querySelectorAll("#dwell th").length,
          heatmap: document.getElementById("heatmap").naturalWidth};
}"""


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
        assert page.is_hidden("#stop") and page.inner_text("#whoami") == "viewer"
        page.wait_for_function("document.getElementById('status').textContent.startsWith('step')", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 4", timeout=30_000)
        assert "people" in page.inner_text("#status")
        page.wait_for_function("document.querySelectorAll('#tiles img')[0].naturalWidth > 0", timeout=30_000)
        # Floor plan: wait until a few people are on it, then read the canvas.
        page.wait_for_function("trails.size >= 3", timeout=60_000)
        plan = page.evaluate(FLOOR_PLAN_JS)
        # Measured: 3 people with 59, 62, 63 pixels of their colour (a disc may hide under another one, so three
        # whole dots are asked for); zone outline #555 (85) antialiased to 69, line #c90 to 115; background 26.
        assert sum(d >= 40 for d in plan["dots"]) >= 3, plan
        assert plan["zones"] and min(plan["zones"]) > 50, plan
        assert plan["lines"] and min(plan["lines"]) > 50, plan
        # Panel: refreshed every 5 s from the history; wait for the first bars and the heatmap.
        page.wait_for_function(
            "document.getElementById('heatmap').naturalWidth > 0 && document.querySelectorAll('#lines tr').length > 1",
            timeout=60_000,
        )
        panel = page.evaluate(PANEL_JS)
        # Measured: 112176 bar pixels (the fullest bucket is drawn 144 px high), a 600 px heatmap, one row per line
        # of the demo set (1), the dwell table's three columns.
        assert panel["bars"] >= 10_000 and panel["heatmap"] > 0 and panel["dwell_header"] == 3, panel
        demo_lines = gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/demo/floor", timeout=10).json()["lines"]
        assert demo_lines and panel["lines"] == len(demo_lines), panel
        browser.close()
    gwapi.delete(f"{stack.gateway_url}/api/v1/sessions/{sid}", timeout=30)
    assert errors == []
