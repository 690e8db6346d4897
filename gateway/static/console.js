// SpotOn console: login, live camera tiles, the floor plan (plan.js), analytics charts (uPlot), events, the timeline
// of file sessions, and identity updates (DESIGN section 3) applied to everything shown. The person view and the
// corrections live in person.js (loaded after this file; its functions are called only once the page runs).
"use strict";

// ---- auth (DESIGN section 3): the key or JWT lives in sessionStorage and travels in headers only; WebSockets get a
// single-use ticket, <img> streams a signed, expiring URL.
const STORE = "spoton.credential";
const $ = (id) => document.getElementById(id);
const credential = () => sessionStorage.getItem(STORE) || "";
const authHeaders = () => {
  const c = credential();
  if (!c) return {};
  return /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/.test(c) ? {"Authorization": `Bearer ${c}`} : {"X-API-Key": c};
};
async function call(p, init = {}) {
  const r = await fetch(p, {...init, headers: {...authHeaders(), ...(init.headers || {})}});
  if (r.status === 401) { showLogin("please log in"); throw new Error("unauthenticated"); }
  return r;
}
const api = (p) => call(p).then((r) => { if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`); return r.json(); });
const post = (p, body) => call(p, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {})})
  .then(async (r) => { const j = await r.json(); if (!r.ok) throw new Error(j.error ? j.error.message : `HTTP ${r.status}`); return j; });
const ticket = async () => (await post("/api/v1/auth/ticket")).ticket;
const signed = async (path, query = "") => { const u = (await post("/api/v1/auth/sign", {path})).url; return query ? `${u}&${query}` : u; };
const bitmap = async (path) => { const r = await call(path); if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`); return createImageBitmap(await r.blob()); };
function showLogin(message) {
  $("login").classList.remove("hidden");
  $("main").classList.add("hidden");
  $("login-error").textContent = message || "";
}
$("login").onsubmit = (e) => {
  e.preventDefault();
  sessionStorage.setItem(STORE, $("credential").value.trim());
  $("credential").value = "";
  start();
};
$("logout").onclick = () => { sessionStorage.removeItem(STORE); location.reload(); };

// ---- identities: one colour per global id (the same hue as the server's boxes, gateway/render.py), and the
// relabelling that identity_update messages ask for.
const colour = (id) => `hsl(${(id * 47) % 360} 85% 60%)`;
const alias = new Map();       // global id -> the id it was merged into
const trackAlias = new Map();  // "camera:track" -> {to, since (ms)}: a split (or settled) track's new id
const resolve = (id) => { const seen = new Set(); while (alias.has(id) && !seen.has(id)) { seen.add(id); id = alias.get(id); } return id; };
function resolveTrack(cam, t, tsMs) {
  const a = trackAlias.get(`${cam}:${t.track_id}`);
  return resolve(a && tsMs >= a.since && t.global_id === a.from ? a.to : t.global_id);
}
const localTime = (iso) => new Date(iso).toLocaleTimeString([], {hour12: false});

// ---- state of the session shown
let me = null, current = null, ws = null, eventsWs = null, plan = null, lastStep = null, focus = 0;
const trails = new Map();     // global id -> [{t (ms), x, y, src: ["camera:track", ...]}]
let present = new Set();      // ids in the latest step
const tiles = new Map();      // camera id -> {div, img, canvas, label, ids}
const TRAIL_POINTS = 80;

function tile(cam) {
  if (!tiles.has(cam)) {
    const div = document.createElement("div"); div.className = "tile"; div.dataset.camera = cam;
    const img = document.createElement("img"); img.alt = `camera ${cam}`;
    const canvas = document.createElement("canvas"); canvas.width = 640; canvas.height = 480;
    img.onload = () => {
      if (img.naturalWidth && canvas.width !== img.naturalWidth) {
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        div.style.aspectRatio = `${img.naturalWidth} / ${img.naturalHeight}`;
        // Resizing cleared the boxes: draw the latest step's again.
        if (lastStep && lastStep.cameras[cam]) drawTile(cam, lastStep.cameras[cam], Date.parse(lastStep.timestamp));
      }
    };
    // Bare frames: the boxes are drawn here from the step messages, so identity updates relabel them at once.
    signed(`/api/v1/sessions/${current.session_id}/cameras/${cam}/stream.mjpeg`, "boxes=false").then((u) => { img.src = u; });
    const label = document.createElement("span"); label.className = "label"; label.textContent = cam;
    const ids = document.createElement("div"); ids.className = "ids";
    canvas.onclick = (e) => onTileClick(cam, e);
    div.append(img, canvas, label, ids); $("tiles").append(div);
    tiles.set(cam, {div, img, canvas, label, ids});
  }
  return tiles.get(cam);
}

function chip(id) {
  const s = document.createElement("span"); s.className = "chip pid"; s.dataset.gid = id; s.textContent = id;
  s.style.background = colour(id); s.onclick = () => openPerson(id);
  return s;
}

function drawTile(cam, body, tsMs) {
  const t = tile(cam), g = t.canvas.getContext("2d");
  g.clearRect(0, 0, t.canvas.width, t.canvas.height);
  g.lineWidth = 2; g.font = "bold 14px system-ui, sans-serif";
  const shown = [];
  for (const tr of body.tracks) {
    const id = tr.global_id ? resolveTrack(cam, tr, tsMs) : 0;
    if (focus && id !== focus) continue;
    const [x1, y1, x2, y2] = tr.bbox;
    g.strokeStyle = id ? colour(id) : "#999"; g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (id) { g.fillStyle = colour(id); g.fillText(String(id), x1 + 2, Math.max(14, y1 - 4)); shown.push(id); }
  }
  t.label.textContent = `${cam} · frame ${body.frame_index} · ${body.tracks.length} tracked`;
  t.ids.replaceChildren(...[...new Set(shown)].sort((a, b) => a - b).map(chip));
}

function onTileClick(cam, e) {
  // A click on a box opens its person (the box under the pointer, in frame pixels).
  if (!lastStep || !lastStep.cameras[cam]) return;
  const t = tiles.get(cam), r = t.canvas.getBoundingClientRect();
  const x = (e.clientX - r.left) * t.canvas.width / r.width, y = (e.clientY - r.top) * t.canvas.height / r.height;
  const ts = Date.parse(lastStep.timestamp);
  const hit = lastStep.cameras[cam].tracks.filter((tr) => tr.global_id && x >= tr.bbox[0] && x <= tr.bbox[2] && y >= tr.bbox[1] && y <= tr.bbox[3]);
  if (hit.length) openPerson(resolveTrack(cam, hit[0], ts), {camera_id: cam, track_id: hit[0].track_id});
}

function redrawPlan() {
  if (plan) plan.drawPeople(trails, present, focus, selected);
}

function onStep(m) {
  lastStep = m;
  const ts = Date.parse(m.timestamp), seen = new Map();
  for (const [cam, body] of Object.entries(m.cameras)) {
    drawTile(cam, body, ts);
    for (const t of body.tracks) if (t.floor && t.global_id) {
      const id = resolveTrack(cam, t, ts), acc = seen.get(id) || {x: 0, y: 0, n: 0, src: []};
      acc.x += t.floor[0]; acc.y += t.floor[1]; acc.n += 1; acc.src.push(`${cam}:${t.track_id}`);
      seen.set(id, acc);
    }
  }
  for (const [id, a] of seen) {
    const tr = trails.get(id) || [];
    tr.push({t: ts, x: a.x / a.n, y: a.y / a.n, src: a.src});
    if (tr.length > TRAIL_POINTS) tr.shift();
    trails.set(id, tr);
  }
  present = new Set(seen.keys());
  redrawPlan();
  $("status").textContent = `step ${m.step} · ${localTime(m.timestamp)} · ${seen.size} people`;
  onTimelineStep(m);
}

// identity_update: {"changes": [{camera_id, track_id, from_global_id, to_global_id, since, reason}]}. A merge
// relabels the whole person; a split (or a settled track) moves one local track's points from ``since`` on.
function onIdentityUpdate(m) {
  const merged = new Map();
  for (const c of m.changes) {
    const since = Date.parse(c.since), key = `${c.camera_id}:${c.track_id}`;
    if (c.reason === "merge") { merged.set(c.from_global_id, c.to_global_id); continue; }
    trackAlias.set(key, {from: c.from_global_id, to: c.to_global_id, since});
    const from = trails.get(c.from_global_id) || [], moved = from.filter((p) => p.t >= since && p.src.length === 1 && p.src[0] === key);
    if (moved.length) {
      trails.set(c.from_global_id, from.filter((p) => !moved.includes(p)));
      trails.set(c.to_global_id, [...(trails.get(c.to_global_id) || []), ...moved].sort((a, b) => a.t - b.t));
      if (present.has(c.from_global_id) && !from.some((p) => !moved.includes(p) && p.t === moved[moved.length - 1].t)) {
        present.delete(c.from_global_id); present.add(c.to_global_id);
      }
    }
    logLine(`track ${c.track_id} of ${c.camera_id} is now person ${c.to_global_id} (was ${c.from_global_id}, ${c.reason})`, c.since);
  }
  for (const [from, to] of merged) {
    alias.set(from, to);
    const pts = [...(trails.get(to) || []), ...(trails.get(from) || [])].sort((a, b) => a.t - b.t).slice(-TRAIL_POINTS);
    trails.delete(from); if (pts.length) trails.set(to, pts);
    if (present.delete(from)) present.add(to);
    if (focus === from) focus = to;
    logLine(`person ${from} is now person ${to} (merge)`, m.changes[0].since);
  }
  // Lists: every rendered person id (events, tiles' chips, persons list) follows the alias map.
  for (const el of document.querySelectorAll(".pid[data-gid]")) {
    const id = Number(el.dataset.gid), to = resolve(id);
    if (to !== id) {
      el.dataset.gid = to; el.title = `was ${id}`;
      el.textContent = el.classList.contains("chip") ? String(to) : el.textContent.replace(String(id), String(to));
      if (el.classList.contains("chip")) el.style.background = colour(to);
    }
  }
  if (lastStep) for (const [cam, body] of Object.entries(lastStep.cameras)) drawTile(cam, body, Date.parse(lastStep.timestamp));
  redrawPlan();
  onIdentitiesChanged(m);  // person.js: the selection, the open person, the persons list
}

// ---- events: "person 7 entered crossing 14:02:11"
const KIND_TEXT = {enter: "entered", exit: "left", cross_forward: "crossed (forward)", cross_backward: "crossed (backward)"};
function logLine(text, iso, cls = "") {
  const li = document.createElement("li"); li.className = cls;
  const time = document.createElement("time"); time.dateTime = iso; time.textContent = ` ${localTime(iso)}`;
  li.append(text, time);
  const list = $("events"); list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
  return li;
}
function onEvent(m) {
  if (m.type !== "zone_event" && m.type !== "alert") return;
  const li = document.createElement("li"), id = m.global_id ? resolve(m.global_id) : 0;
  const who = document.createElement("span"); who.className = "pid"; who.dataset.gid = id; who.textContent = `person ${id}`;
  who.style.color = colour(id); who.style.cursor = "pointer"; who.onclick = () => openPerson(Number(who.dataset.gid));
  if (m.type === "alert") { li.className = "alert"; li.append(`ALERT ${m.rule_id}: ${m.message}`); }
  else li.append(who, ` ${KIND_TEXT[m.kind] || m.kind} ${m.zone_id}`);
  const time = document.createElement("time"); time.dateTime = m.timestamp; time.textContent = ` ${localTime(m.timestamp)}`;
  li.append(time);
  const list = $("events"); list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

// ---- analytics: occupancy chart (uPlot: time axis in local time, people axis), dwell and line tables, heatmap layer
let occupancyChart = null;
const clock = uPlot.fmtDate("{HH}:{mm}:{ss}");
const BUCKETS_S = [1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600];
function occupancyBucket() {
  // About 60 buckets over the media time seen so far: seconds for a short clip, minutes to an hour for a long day.
  const start = current && current.media_start ? Date.parse(current.media_start) : NaN;
  const span = lastStep && !Number.isNaN(start) ? (Date.parse(lastStep.timestamp) - start) / 1000 : 0;
  return BUCKETS_S.find((b) => b >= span / 60) || 3600;
}
function occupancyPlot(data) {
  const el = $("occupancy"), width = Math.max(300, el.clientWidth || 600);
  if (occupancyChart) { occupancyChart.setData(data); return; }
  const axis = {stroke: "#aaa", grid: {stroke: "#333", width: 1}, ticks: {stroke: "#444", width: 1}};
  occupancyChart = new uPlot({
    width, height: 180,
    // At least a minute of time axis (uPlot stretches a single point over years).
    scales: {x: {time: true, range: (u, lo, hi) => {
      const xs = u.data[0], a = xs[0], b = xs[xs.length - 1];
      return xs.length && b - a < 60 ? [a - 30, b + 30] : [lo, hi];
    }},
      y: {range: (u, lo, hi) => [0, Math.max(1, hi)]}},
    series: [{label: "time"}, {label: "people", stroke: "#6af", fill: "rgba(102,170,255,0.25)", width: 2,
      paths: uPlot.paths.stepped({align: 1})}],
    axes: [{...axis, label: "local time", space: 80, values: (u, splits) => splits.map((v) => clock(new Date(v * 1000)))}, {...axis, label: "people", values: (u, v) => v.map((x) => Number.isInteger(x) ? x : "")}],
    legend: {show: true},
  }, data, el);
}

async function refreshAnalytics() {
  if (!current) return;
  const q = `session_id=${current.session_id}`;
  try {
    const bucket = occupancyBucket();
    $("occupancy-title").textContent = `Occupancy (people per ${bucket < 60 ? `${bucket} s` : `${bucket / 60} min`})`;
    const occ = await api(`/api/v1/analytics/occupancy?${q}&bucket_s=${bucket}`);
    const b = occ.buckets || [];
    occupancyPlot([b.map((x) => x.start_ns / 1e9), b.map((x) => x.people)]);
    const dwell = await api(`/api/v1/analytics/dwell?${q}`), byZone = {};
    for (const d of dwell.dwells || []) (byZone[d.zone_id] = byZone[d.zone_id] || []).push(d.dwell_s);
    $("dwell").innerHTML = "<tr><th>zone</th><th>visits</th><th>mean s</th></tr>" +
      Object.entries(byZone).map(([z, v]) => `<tr><td>${z}</td><td>${v.length}</td><td>${(v.reduce((a, c) => a + c, 0) / v.length).toFixed(1)}</td></tr>`).join("");
    const lines = await api(`/api/v1/analytics/line-crossings?${q}`);
    $("lines").innerHTML = "<tr><th>line</th><th>forward</th><th>backward</th></tr>" +
      (lines.lines || []).map((l) => `<tr><td>${l.line_id}</td><td>${l.forward}</td><td>${l.backward}</td></tr>`).join("");
    if ($("heat-toggle").checked && plan) plan.drawHeat(await api(`/api/v1/analytics/heatmap?${q}&cell_m=0.5`));
  } catch (e) { /* analytics not ready yet */ }
}
setInterval(refreshAnalytics, 5000);
$("heat-toggle").onchange = () => {
  $("plan-heat").classList.toggle("hidden", !$("heat-toggle").checked);
  if ($("heat-toggle").checked) refreshAnalytics();
};

// ---- the floor plan's background: the floor image, else every camera's bird's-eye view composited
async function loadPlan(session) {
  const doc = await api(`/api/v1/video-sets/${session.video_set}/floor`);
  if (current !== session) return;
  plan = new FloorPlan(doc);
  plan.drawFigure();
  let pictures = [], kind = "none";
  try {
    if (doc.floor.image) {
      pictures = [await bitmap(`/api/v1/video-sets/${session.video_set}/floor.png`)]; kind = "image";
    } else {
      const pxPerM = Math.min(40, Math.ceil(plan.s));
      const got = await Promise.all(session.cameras.map((cam) =>
        bitmap(`/api/v1/video-sets/${session.video_set}/cameras/${cam}/calibration/birdseye.png?px_per_m=${pxPerM}&figure=false`).catch(() => null)));
      pictures = got.filter(Boolean); kind = pictures.length ? "birdseye" : "none";
    }
  } catch (e) { /* no background: the grid alone */ }
  if (plan.doc !== doc) return;
  plan.drawBackground(pictures, kind);
  plan.drawFigure();
  redrawPlan();
}
$("floor").onclick = (e) => {
  if (!plan) return;
  const c = $("floor"), r = c.getBoundingClientRect();
  const id = plan.personAt(trails, present, [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]);
  if (id) openPerson(id);
};

// ---- timeline of file sessions: a scrubber that seeks, the current frame and media time
let scrubbing = false, frameCount = 0;
function onTimelineStep(m) {
  const cams = Object.values(m.cameras);
  if (!cams.length) return;
  const frame = cams[0].frame_index;
  if (!scrubbing) $("scrub").value = frame;
  $("frame-label").textContent = `frame ${frame}${frameCount ? ` / ${frameCount}` : ""} · ${localTime(m.timestamp)}`;
  $("frame-label").dataset.frame = frame;
}
function setupTimeline(summary) {
  const progress = Object.values(summary.progress || {});
  frameCount = Math.max(0, ...progress.map((p) => p.frame_count || 0));
  const live = !frameCount || progress.some((p) => ["live", "connecting", "reconnecting", "stalled"].includes(p.state));
  $("timeline").classList.toggle("hidden", live);
  $("scrub").max = Math.max(1, frameCount);
  $("scrub").disabled = me.role === "viewer";
}
$("scrub").onpointerdown = () => { scrubbing = true; };
$("scrub").onchange = async () => {
  scrubbing = false;
  if (!current) return;
  const frame = Number($("scrub").value);
  $("frame-label").textContent = `seeking to frame ${frame}…`;
  try { await post(`/api/v1/sessions/${current.session_id}/seek`, {frame_index: frame}); }
  catch (e) { $("frame-label").textContent = `seek refused: ${e.message}`; }
};

// ---- header: session status and controls
async function refreshStatus() {
  // Cameras that lag, reconnect or ended say so on their tile; the header shows dropped frames and health.
  if (!current) return;
  try {
    const s = await api(`/api/v1/sessions/${current.session_id}`);
    for (const [cam, p] of Object.entries(s.progress || {})) {
      const t = tile(cam), down = ["reconnecting", "connecting", "stalled", "ended"].includes(p.state);
      t.div.classList.toggle("down", down);
      if (down) t.label.textContent = `${cam} · ${p.state}`;
    }
    if (!frameCount) setupTimeline(s);
    const h = await api("/health");
    $("health").textContent = `${s.status} · ${s.steps_per_s} steps/s · dropped ${s.dropped_frames} · ${h.status}`;
  } catch (e) { /* gateway busy */ }
}
setInterval(refreshStatus, 2000);

const control = (action) => async () => {
  if (!current) return;
  const method = action === "stop" ? "DELETE" : "POST", path = action === "stop" ? "" : `/${action}`;
  await call(`/api/v1/sessions/${current.session_id}${path}`, {method});
  refreshStatus();
};
for (const a of ["pause", "resume", "stop"]) $(a).onclick = control(a);

let generation = 0;  // a newer connect() makes an older one, still awaiting, stop
async function connect(session) {
  const mine = ++generation;
  if (ws) ws.close();
  if (eventsWs) eventsWs.close();
  ws = eventsWs = null;
  current = session; lastStep = null; focus = 0; frameCount = 0;
  // Stop the old streams: an <img> taken out of the page keeps its MJPEG connection open, and a browser has six per
  // host (HTTP/1.1), so stale streams would starve every later request of the page.
  for (const t of tiles.values()) t.img.src = "data:,";
  tiles.clear(); $("tiles").innerHTML = ""; $("events").innerHTML = "";
  trails.clear(); alias.clear(); trackAlias.clear(); present = new Set();
  $("status").textContent = "connecting…";
  setupTimeline(session);
  const proto = location.protocol === "https:" ? "wss" : "ws", t = await ticket();
  if (mine !== generation) return;
  eventsWs = new WebSocket(`${proto}://${location.host}/ws/events/${session.session_id}?ticket=${t}`);
  eventsWs.onmessage = (e) => onEvent(JSON.parse(e.data));
  await loadPlan(session);
  if (mine !== generation) return;
  refreshAnalytics();
  onSessionShown(session);
  await openTracking();
}

async function openTracking() {
  // The session's steps and identity updates; in focus mode only the focused person (?global_id=).
  if (ws) ws.close();
  ws = null;
  const mine = generation, proto = location.protocol === "https:" ? "wss" : "ws", q = focus ? `&global_id=${focus}` : "";
  const t = await ticket();
  if (mine !== generation || ws) return;  // another session, or another openTracking, got there first
  ws = new WebSocket(`${proto}://${location.host}/ws/tracking/${current.session_id}?ticket=${t}${q}`);
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "step") onStep(m);
    else if (m.type === "identity_update") onIdentityUpdate(m);
    else if (m.type === "session_ended") $("status").textContent = `session ${m.status}`;
  };
}

async function init() {
  const { sessions } = await api("/api/v1/sessions/");
  const sel = $("session");
  sel.innerHTML = "";
  for (const s of sessions) { const o = document.createElement("option"); o.value = s.session_id; o.textContent = `${s.session_id} (${s.video_set}, ${s.status})`; sel.append(o); }
  sel.onchange = () => { if (!current || current.session_id !== sel.value) connect(sessions.find((s) => s.session_id === sel.value)); };
  const live = sessions.filter((s) => s.status === "running").pop() || sessions[sessions.length - 1];
  if (live) { sel.value = live.session_id; connect(live); } else $("status").textContent = "no session yet";
}
async function start() {
  try { me = await api("/api/v1/auth/me"); } catch (e) { return; }
  $("login").classList.add("hidden");
  $("main").classList.remove("hidden");
  $("logout").classList.toggle("hidden", me.via === "auth-off");
  $("whoami").textContent = me.via === "auth-off" ? "auth off" : `${me.role}`;
  // Viewers watch; pausing, resuming, stopping, seeking and corrections need the operator role.
  for (const b of document.querySelectorAll(".operator")) b.classList.toggle("hidden", me.role === "viewer");
  showSelection();
  init();
}
