// The floor plan: stacked canvases of one size (background, heatmap, figure, people) and ONE floor -> pixel
// transform that every layer draws through, so a floor point lands on the same pixel in each of them.
// Floor coordinates are metres (DESIGN section 4: floor {width_m, height_m, origin_m}), y pointing north = up.
"use strict";

const PLAN_MARGIN_PX = 28;  // room for the scale bar and the edge labels
// A perceptual ramp (matplotlib's inferno, 8 stops) for presence seconds on a log scale.
const HEAT_STOPS = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
  [250, 193, 39], [252, 255, 164]];
// Pixels of a bird's-eye picture outside the camera's view (spoton/floorplan.py birdseye's borderValue).
const BIRDSEYE_EMPTY = 30;

/** Colour of a heatmap value t in [0, 1] as [r, g, b] (0..255 integers). */
function heatColour(t) {
  const u = Math.min(1, Math.max(0, t)) * (HEAT_STOPS.length - 1), i = Math.min(HEAT_STOPS.length - 2, Math.floor(u));
  const a = HEAT_STOPS[i], b = HEAT_STOPS[i + 1], f = u - i;
  return a.map((v, k) => Math.round(v + (b[k] - v) * f));
}

class FloorPlan {
  /** @param doc {floor, zones, lines} of GET /api/v1/video-sets/{name}/floor */
  constructor(doc) {
    this.doc = doc;
    this.f = doc.floor;
    this.bg = document.getElementById("plan-bg");
    this.heat = document.getElementById("plan-heat");
    this.fig = document.getElementById("plan-fig");
    this.people = document.getElementById("floor");
    const W = this.people.width, H = this.people.height, m = PLAN_MARGIN_PX;
    // Metres -> pixels: the floor rectangle fitted into the canvas less the margins, centred, north up.
    this.s = Math.min((W - 2 * m) / this.f.width_m, (H - 2 * m) / this.f.height_m);
    this.ox = (W - this.f.width_m * this.s) / 2;
    this.oy = (H - this.f.height_m * this.s) / 2;
    this.backgroundKind = "none";
    this.heatData = null;
  }

  /** Floor metres [x, y] -> canvas pixels [px, py]. */
  toPx([x, y]) {
    return [this.ox + (x - this.f.origin_m[0]) * this.s, this.oy + (this.f.origin_m[1] + this.f.height_m - y) * this.s];
  }

  /** Canvas pixels -> floor metres (for clicks). */
  toFloor([px, py]) {
    return [(px - this.ox) / this.s + this.f.origin_m[0], this.f.origin_m[1] + this.f.height_m - (py - this.oy) / this.s];
  }

  /** The pixel rectangle [left, top, width, height] of the floor rectangle x0..x1, y0..y1 (metres). */
  rect(x0, y0, x1, y1) {
    const [l, t] = this.toPx([x0, y1]), [r, b] = this.toPx([x1, y0]);
    return [l, t, r - l, b - t];
  }

  /** The whole floor's rectangle in pixels. */
  floorRect() {
    const [x0, y0] = this.f.origin_m;
    return this.rect(x0, y0, x0 + this.f.width_m, y0 + this.f.height_m);
  }

  /** Background: pictures that each span the whole floor rectangle (the floor image, or every camera's bird's-eye
   * view, whose out-of-view pixels are made transparent so the cameras composite into one mosaic). */
  drawBackground(pictures, kind) {
    const g = this.bg.getContext("2d");
    g.clearRect(0, 0, this.bg.width, this.bg.height);
    const [l, t, w, h] = this.floorRect();
    g.fillStyle = "#262626";
    g.fillRect(l, t, w, h);
    for (const pic of pictures) {
      let src = pic;
      if (kind === "birdseye") {
        src = document.createElement("canvas");
        src.width = pic.width; src.height = pic.height;
        const sg = src.getContext("2d");
        sg.drawImage(pic, 0, 0);
        const im = sg.getImageData(0, 0, src.width, src.height), d = im.data;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] === BIRDSEYE_EMPTY && d[i + 1] === BIRDSEYE_EMPTY && d[i + 2] === BIRDSEYE_EMPTY) d[i + 3] = 0;
        }
        sg.putImageData(im, 0, 0);
      }
      g.globalAlpha = 0.8;
      g.drawImage(src, l, t, w, h);
      g.globalAlpha = 1;
    }
    this.backgroundKind = kind;
  }

  /** Metre grid (every 1 m faint, every 5 m stronger), the floor's outline, zones and lines with their names, a
   * scale bar and a north arrow. */
  drawFigure() {
    const g = this.fig.getContext("2d"), f = this.f, [x0, y0] = f.origin_m, x1 = x0 + f.width_m, y1 = y0 + f.height_m;
    g.clearRect(0, 0, this.fig.width, this.fig.height);
    g.lineWidth = 1;
    const line = (a, b) => { g.beginPath(); g.moveTo(...this.toPx(a)); g.lineTo(...this.toPx(b)); g.stroke(); };
    for (let x = Math.ceil(x0); x <= x1 + 1e-9; x++) {
      g.strokeStyle = x % 5 === 0 ? "rgba(255,255,255,0.28)" : "rgba(255,255,255,0.09)"; line([x, y0], [x, y1]);
    }
    for (let y = Math.ceil(y0); y <= y1 + 1e-9; y++) {
      g.strokeStyle = y % 5 === 0 ? "rgba(255,255,255,0.28)" : "rgba(255,255,255,0.09)"; line([x0, y], [x1, y]);
    }
    g.strokeStyle = "#777"; g.strokeRect(...this.floorRect());
    g.font = "12px system-ui, sans-serif";
    for (const z of this.doc.zones) {
      g.strokeStyle = "#5c5"; g.lineWidth = 2; g.beginPath();
      z.polygon.forEach((p, i) => (i ? g.lineTo(...this.toPx(p)) : g.moveTo(...this.toPx(p))));
      g.closePath(); g.stroke();
      const [cx, cy] = this.toPx(z.polygon.reduce((a, p) => [a[0] + p[0] / z.polygon.length, a[1] + p[1] / z.polygon.length], [0, 0]));
      this.label(g, z.id, cx, cy, "#8e8");
    }
    for (const l of this.doc.lines) {
      g.strokeStyle = "#f90"; g.lineWidth = 3; line(l.a, l.b);
      const [px, py] = this.toPx(l.b);
      this.label(g, l.id, px + 4, py - 8, "#fb5");
    }
    g.lineWidth = 1;
    // Scale bar: the largest of 1, 2, 5, 10, 20, 50 m that stays under 160 px, bottom left.
    const metres = [1, 2, 5, 10, 20, 50].filter((m) => m * this.s <= 160).pop() || 1, len = metres * this.s;
    const bx = this.ox, by = this.fig.height - 10;
    g.strokeStyle = "#eee"; g.fillStyle = "#eee"; g.lineWidth = 2;
    g.beginPath(); g.moveTo(bx, by - 5); g.lineTo(bx, by); g.lineTo(bx + len, by); g.lineTo(bx + len, by - 5); g.stroke();
    g.lineWidth = 1; g.textBaseline = "bottom"; g.fillText(`${metres} m`, bx + len + 6, by + 2);
    g.fillText(`grid 1 m · ${this.backgroundKind === "none" ? "no background" : this.backgroundKind === "image" ? "floor image" : "bird's-eye mosaic"}`, bx + len + 50, by + 2);
    const [nx, ny] = [this.fig.width - 18, 22];  // north arrow
    g.beginPath(); g.moveTo(nx, ny - 14); g.lineTo(nx - 6, ny); g.lineTo(nx + 6, ny); g.closePath(); g.fill();
    g.textBaseline = "top"; g.fillText("N", nx - 4, ny + 2); g.textBaseline = "alphabetic";
  }

  label(g, text, x, y, colour) {
    const w = g.measureText(text).width;
    g.fillStyle = "rgba(0,0,0,0.6)"; g.fillRect(x - 2, y - 11, w + 4, 14);
    g.fillStyle = colour; g.fillText(text, x, y);
  }

  /** Heatmap layer from GET /api/v1/analytics/heatmap ({rows, cols, cell_m, origin_x_m, origin_y_m, seconds}, row 0
   * at origin_y_m): each cell drawn as its floor rectangle, opaque (the layer's CSS opacity blends it). */
  drawHeat(h) {
    this.heatData = h;
    const g = this.heat.getContext("2d");
    g.clearRect(0, 0, this.heat.width, this.heat.height);
    if (!h || !h.seconds || !h.seconds.length) return;
    const max = Math.log1p(Math.max(...h.seconds));
    if (!(max > 0)) return;
    for (let r = 0; r < h.rows; r++) {
      for (let c = 0; c < h.cols; c++) {
        const v = h.seconds[r * h.cols + c];
        if (!(v > 0)) continue;
        const x = h.origin_x_m + c * h.cell_m, y = h.origin_y_m + r * h.cell_m;
        const [l, t, w, hh] = this.rect(x, y, x + h.cell_m, y + h.cell_m);
        // Whole pixels so neighbouring cells neither overlap nor leave seams.
        const L = Math.round(l), T = Math.round(t);
        g.fillStyle = `rgb(${heatColour(Math.log1p(v) / max).join(",")})`;
        g.fillRect(L, T, Math.round(l + w) - L, Math.round(t + hh) - T);
      }
    }
  }

  /** People: each person's trail and, for those seen in the latest step, a dot and its id, in ``colour(id)``.
   * @param trails Map(global id -> [{t, x, y}]) ; @param current Set of ids in the latest step ; @param focus id | 0 */
  drawPeople(trails, current, focus, selected) {
    const g = this.people.getContext("2d");
    g.clearRect(0, 0, this.people.width, this.people.height);
    g.font = "bold 12px system-ui, sans-serif";
    for (const [id, pts] of trails) {
      if (focus && id !== focus) continue;
      g.strokeStyle = colour(id); g.lineWidth = 2; g.globalAlpha = 0.7; g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(...this.toPx([p.x, p.y])) : g.moveTo(...this.toPx([p.x, p.y]))));
      g.stroke(); g.globalAlpha = 1;
    }
    for (const [id, pts] of trails) {
      if ((focus && id !== focus) || !current.has(id) || !pts.length) continue;
      const p = pts[pts.length - 1], [x, y] = this.toPx([p.x, p.y]);
      if (selected && selected.has(id)) { g.strokeStyle = "#fff"; g.lineWidth = 2; g.beginPath(); g.arc(x, y, 9, 0, 7); g.stroke(); }
      g.fillStyle = colour(id); g.beginPath(); g.arc(x, y, 6, 0, 7); g.fill();
      g.fillText(String(id), x + 8, y - 6);
    }
  }

  /** The id of the person whose dot is nearest to canvas pixel (px, py), within 12 px, or 0. */
  personAt(trails, current, [px, py]) {
    let best = 0, bestD = 12;
    for (const [id, pts] of trails) {
      if (!current.has(id) || !pts.length) continue;
      const p = pts[pts.length - 1], [x, y] = this.toPx([p.x, p.y]), d = Math.hypot(x - px, y - py);
      if (d < bestD) { best = id; bestD = d; }
    }
    return best;
  }
}
