// Read-backs of the console's canvases for tests/test_console.py (added to the page with add_script_tag): what is
// drawn where, compared with the page's one floor -> pixel transform (plan.toPx).
"use strict";

// Every frame index the page showed, in order (the timeline is updated once per step message).
function recordFrames() {
  window.framesSeen = [];
  const show = onTimelineStep;
  onTimelineStep = (m) => {
    show(m);
    const c = Object.values(m.cameras);
    if (c.length) framesSeen.push(c[0].frame_index);
  };
}

function pixels(id) {
  const c = document.getElementById(id);
  return c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
}

function rgbOf(css) {
  const g = document.createElement("canvas").getContext("2d");
  g.fillStyle = css;
  return [1, 3, 5].map((k) => parseInt(g.fillStyle.slice(k, k + 2), 16));
}

// Index in an RGBA array of the pixel that holds canvas point (x, y).
const pixelIndex = ([x, y]) => 4 * (Math.floor(y) * plan.people.width + Math.floor(x));

// Pixels of exactly this person's colour on the people layer, and elements that still name the id.
function personTrace(id) {
  const px = pixels("floor"), [r, g, b] = rgbOf(colour(id));
  let n = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] === r && px[i + 1] === g && px[i + 2] === b) n++;
  const labels = [...document.querySelectorAll(".pid")].filter((e) => e.dataset.gid === String(id)).length;
  return {pixels: n, labels};
}

// The people layer: each present person's dot (pixels of its colour, the colour at plan.toPx(last point)).
function probePeople() {
  const px = pixels("floor");
  const dots = [...present].map((id) => {
    const pts = trails.get(id), p = pts[pts.length - 1], i = pixelIndex(plan.toPx([p.x, p.y]));
    return {id, pixels: personTrace(id).pixels, centre: [px[i], px[i + 1], px[i + 2]], colour: rgbOf(colour(id))};
  });
  return {dots, trails: [...trails.keys()], present: [...present]};
}

// Figure, heatmap and people layers read at the same floor points: zone corners and line ends (lit on the figure:
// the brightest channel times alpha, so the faint grid lines under them count for little),
// every heatmap cell's centre (its colour on the heat layer; empty cells transparent), each present person's last
// point (their dot, and the heat under it); and how much of the floor the bird's-eye mosaic covers.
function probeLayers() {
  const fig = pixels("plan-fig"), heat = pixels("plan-heat"), bg = pixels("plan-bg"), people = pixels("floor");
  const lit = (p) => {
    const [x, y] = plan.toPx(p);
    let m = 0;
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      const i = pixelIndex([x + dx, y + dy]);
      m = Math.max(m, Math.max(fig[i], fig[i + 1], fig[i + 2]) * fig[i + 3] / 255);  // as drawn over black
    }
    return m;
  };
  const h = plan.heatData, max = Math.log1p(Math.max(...h.seconds));
  let cells = 0, wrong = 0, empty = 0, emptyWrong = 0;
  for (let r = 0; r < h.rows; r++) for (let c = 0; c < h.cols; c++) {
    const v = h.seconds[r * h.cols + c];
    const i = pixelIndex(plan.toPx([h.origin_x_m + (c + 0.5) * h.cell_m, h.origin_y_m + (r + 0.5) * h.cell_m]));
    if (v > 0) {
      cells++;
      const e = heatColour(Math.log1p(v) / max);
      const diff = Math.abs(heat[i] - e[0]) + Math.abs(heat[i + 1] - e[1]) + Math.abs(heat[i + 2] - e[2]);
      if (diff > 3 || heat[i + 3] !== 255) wrong++;
    } else {
      empty++;
      if (heat[i + 3] !== 0) emptyWrong++;
    }
  }
  const [l, t, w, hh] = plan.floorRect().map(Math.round), W = plan.people.width;
  let mosaic = 0, floorPx = 0;
  for (let y = t + 1; y < t + hh - 1; y += 2) for (let x = l + 1; x < l + w - 1; x += 2) {
    const i = 4 * (y * W + x);
    floorPx++;
    if (Math.abs(bg[i] - 0x26) + Math.abs(bg[i + 1] - 0x26) + Math.abs(bg[i + 2] - 0x26) > 24) mosaic++;
  }
  const points = [...present].map((id) => {
    const pts = trails.get(id), p = pts[pts.length - 1], i = pixelIndex(plan.toPx([p.x, p.y]));
    return {id, floor: [p.x, p.y], dot: [people[i], people[i + 1], people[i + 2]], colour: rgbOf(colour(id)),
      heat: [heat[i], heat[i + 1], heat[i + 2], heat[i + 3]]};
  });
  return {kind: plan.backgroundKind, zoneCorners: plan.doc.zones.map((z) => lit(z.polygon[0])),
    lineEnds: plan.doc.lines.map((ln) => lit(ln.a)), cells, wrong, empty, emptyWrong,
    mosaicShare: mosaic / floorPx, points, heatmap: h, max};
}

// Set the timeline's scrubber as a person dragging it would (the page seeks on "change").
function scrubTo(frame) {
  const s = document.getElementById("scrub");
  s.value = frame;
  s.dispatchEvent(new Event("change"));
}

// The floor plan at a glance (tests/test_dashboard.py): pixels of each present person's colour on the people layer,
// and the brightest figure pixel near each zone's first corner and each line's middle.
function probeFloorPlan() {
  const fig = pixels("plan-fig");
  const lit = (p) => {
    const [x, y] = plan.toPx(p);
    let m = 0;
    for (let dx = -2; dx <= 2; dx++) for (let dy = -2; dy <= 2; dy++) {
      const i = pixelIndex([x + dx, y + dy]);
      m = Math.max(m, Math.max(fig[i], fig[i + 1], fig[i + 2]) * fig[i + 3] / 255);  // as drawn over black
    }
    return m;
  };
  return {dots: [...present].map((id) => personTrace(id).pixels), zones: plan.doc.zones.map((z) => lit(z.polygon[0])),
    lines: plan.doc.lines.map((l) => lit([(l.a[0] + l.b[0]) / 2, (l.a[1] + l.b[1]) / 2]))};
}

// The panel: the occupancy chart (uPlot: points, its series' stroke pixels #6af), the line table's rows per line,
// the dwell table's header cells.
function probePanel() {
  const c = document.querySelector("#occupancy canvas"), px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let stroke = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] === 0x66 && px[i + 1] === 0xaa && px[i + 2] === 0xff) stroke++;
  return {points: occupancyChart.data[0].length, stroke, lines: document.querySelectorAll("#lines tr").length - 1,
    dwell_header: document.querySelectorAll("#dwell th").length};
}

// Where on the screen (CSS px) a present person's dot is, for a real mouse click.
function dotScreenPoint(id) {
  const pts = trails.get(id), p = pts[pts.length - 1], [x, y] = plan.toPx([p.x, p.y]);
  const c = document.getElementById("floor"), r = c.getBoundingClientRect();
  return [r.left + x * r.width / c.width, r.top + y * r.height / c.height];
}

// The background layer's colour at the floor's centre (plan.toPx of the floor rectangle's middle).
function probeBackground() {
  const f = plan.f, bg = pixels("plan-bg");
  const i = pixelIndex(plan.toPx([f.origin_m[0] + f.width_m / 2, f.origin_m[1] + f.height_m / 2]));
  return {kind: plan.backgroundKind, centre: [bg[i], bg[i + 1], bg[i + 2], bg[i + 3]]};
}
