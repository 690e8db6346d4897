// Person view: click a dot or a box -> thumbnail, cameras, first/last seen, dwell per zone, the trajectory on the
// floor plan; focus mode; "find this person elsewhere" (person search, when the video set has it). Corrections
// (operators): select two persons -> merge; a track (opened from its box) -> split; undo the last correction. Their
// effect shows through the identity_update messages the gateway sends.
"use strict";

const selected = new Set();  // persons picked for a merge (at most two, in the order picked)

let shownPerson = 0;

function personRow(p, id) {
  return p.find((x) => x.global_id === id || (x.merged_from || []).includes(id));
}

async function openPerson(id, track) {
  if (!current || !id) return;
  id = resolve(id);
  shownPerson = id;
  const box = $("person"), sid = current.session_id;
  box.classList.remove("hidden");
  box.innerHTML = `<h2>Person <span class="pid" data-gid="${id}">${id}</span></h2><p>loading…</p>`;
  const [persons, dwell, traj] = await Promise.all([
    api(`/api/v1/tracking/${sid}/persons`).then((r) => r.persons).catch(() => []),
    api(`/api/v1/analytics/dwell?session_id=${sid}`).then((r) => r.dwells || []).catch(() => []),
    api(`/api/v1/analytics/trajectory?session_id=${sid}&global_id=${id}&simplify_m=0.1`).then((r) => r.trajectories || []).catch(() => []),
  ]);
  if (shownPerson !== id) return;
  const p = personRow(persons, id);
  const h = document.createElement("div");
  const title = document.createElement("h2");
  title.append("Person ", chip(id));
  const img = document.createElement("img"); img.id = "person-thumb"; img.alt = `person ${id}`; img.style.maxHeight = "160px";
  call(`/api/v1/tracking/${sid}/persons/${id}/thumbnail.jpg`).then(async (r) => {
    if (r.ok) img.src = URL.createObjectURL(await r.blob()); else img.alt = `no thumbnail (HTTP ${r.status})`;
  });
  const facts = document.createElement("table"); facts.id = "person-facts";
  const row = (k, v) => { const tr = facts.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v; };
  if (p) {
    row("cameras", p.cameras.join(", "));
    row("first seen", localTime(p.first_seen));
    row("last seen", localTime(p.last_seen));
    if (p.merged_from) row("merged from", p.merged_from.join(", "));
  } else row("history", "not written yet");
  if (track) row("track", `${track.camera_id} #${track.track_id}`);
  const zones = {};
  for (const d of dwell) if (d.global_id === id) zones[d.zone_id] = (zones[d.zone_id] || 0) + d.dwell_s;
  for (const [z, s] of Object.entries(zones)) row(`dwell in ${z}`, `${s.toFixed(1)} s`);
  const buttons = document.createElement("div");
  const button = (text, cls, fn) => { const b = document.createElement("button"); b.type = "button"; b.textContent = text; b.className = cls; b.onclick = fn; buttons.append(b, " "); return b; };
  button(focus === id ? "show everyone" : "focus", "", () => setFocus(focus === id ? 0 : id)).id = "person-focus";
  if (videoSetDoc && videoSetDoc.person_search) button("find elsewhere", "operator", () => findElsewhere(id)).id = "person-search";
  button(selected.has(id) ? "unselect" : "select for merge", "operator", () => toggleSelected(id)).id = "person-select";
  if (track) {
    button(`split track ${track.camera_id} #${track.track_id} off`, "operator", () => correct("split", track)).id = "person-split";
  }
  button("close", "", () => { shownPerson = 0; box.classList.add("hidden"); personPath = null; redrawPlan(); });
  for (const b of buttons.querySelectorAll(".operator")) b.classList.toggle("hidden", me.role === "viewer");
  const out = document.createElement("div"); out.id = "person-out";
  box.replaceChildren(title, img, facts, buttons, out);
  // The trajectory: the history's points of this person (merges resolved), drawn over the plan.
  personPath = {id, points: traj.flatMap((t) => t.points || [])};
  redrawPlan();
}

// The shown person's whole trajectory, drawn on the people layer after the live dots.
let personPath = null;
const drawPeopleLive = FloorPlan.prototype.drawPeople;
FloorPlan.prototype.drawPeople = function (trailsMap, now, focusId, sel) {
  drawPeopleLive.call(this, trailsMap, now, focusId, sel);
  if (!personPath || !personPath.points.length) return;
  const g = this.people.getContext("2d");
  g.strokeStyle = "#fff"; g.lineWidth = 1.5; g.setLineDash([4, 3]); g.beginPath();
  personPath.points.forEach((p, i) => { const xy = this.toPx([p.x_m, p.y_m]); i ? g.lineTo(...xy) : g.moveTo(...xy); });
  g.stroke(); g.setLineDash([]);
};

async function setFocus(id) {
  // Focus mode: only this person in the tiles and the plan; the tracking WebSocket follows it (?global_id=).
  focus = id;
  $("focus-note").textContent = id ? `focus: person ${id}` : "";
  if (!current) return;
  await openTracking();
  if (lastStep) for (const [cam, body] of Object.entries(lastStep.cameras)) drawTile(cam, body, Date.parse(lastStep.timestamp));
  redrawPlan();
  if (shownPerson) openPerson(shownPerson);
}

async function findElsewhere(id) {
  const out = $("person-out");
  out.textContent = "searching…";
  try {
    const r = await post("/api/v1/search/persons", {session_id: current.session_id, global_id: id});
    out.replaceChildren(...(r.hits || []).map((h) => {
      const d = document.createElement("div");
      d.textContent = `session ${h.session_id} · person ${h.global_id} · ${h.cameras.join(", ")} · score ${h.score.toFixed(2)}`;
      return d;
    }));
    if (!(r.hits || []).length) out.textContent = "nobody like this person elsewhere";
  } catch (e) { out.textContent = `search: ${e.message}`; }
}

// ---- corrections (operator role: the buttons are hidden for viewers, and the API refuses them anyway)
function toggleSelected(id) {
  if (selected.has(id)) selected.delete(id);
  else {
    selected.add(id);
    if (selected.size > 2) selected.delete(selected.values().next().value);
  }
  showSelection();
  redrawPlan();
  if (shownPerson === id) openPerson(id);
}

function showSelection() {
  const [into, from] = [...selected];
  $("selection").textContent = selected.size ? `selected: ${[...selected].join(", ")}` : "";
  $("merge").classList.toggle("hidden", selected.size !== 2 || me.role === "viewer");
  if (selected.size === 2) $("merge").textContent = `merge ${from} into ${into}`;
}

async function correct(kind, body) {
  const path = `/api/v1/tracking/${current.session_id}/persons/${kind}`;
  $("correction-status").textContent = `${kind}…`;
  try {
    const r = await post(path, body);
    if (kind === "merge") $("correction-status").textContent = `merged ${body.from} into ${body.into}`;
    else if (kind === "split") $("correction-status").textContent = `track ${body.camera_id} #${body.track_id} is now person ${r.global_id}`;
    else {
      const u = r.undone, to = r.changes.length ? r.changes[0].to_global_id : 0;
      $("correction-status").textContent = u.kind === "merge"
        ? `undid the merge of ${u.from} into ${u.into}: its tracks are person ${to} now`
        : `undid the split: track ${u.camera_id} #${u.track_id} is person ${u.from} again`;
    }
    if (kind === "merge") { selected.clear(); showSelection(); }
    refreshPersons();
    if (shownPerson) openPerson(shownPerson);  // its facts changed (merged from, cameras, first seen)
    return r;
  } catch (e) {
    $("correction-status").textContent = `${kind} refused: ${e.message}`;
    return null;
  }
}
$("merge").onclick = () => { const [into, from] = [...selected]; correct("merge", {into, from}); };
$("undo").onclick = () => correct("undo", {});

// Selections and the open person follow identity updates.
function onIdentitiesChanged() {
  for (const id of [...selected]) if (resolve(id) !== id) { selected.delete(id); selected.add(resolve(id)); }
  showSelection();
  if (shownPerson && resolve(shownPerson) !== shownPerson) openPerson(resolve(shownPerson));
  refreshPersons();
}

// ---- the persons list (history, merges resolved by the gateway): chips open the person view
async function refreshPersons() {
  if (!current) return;
  try {
    const {persons} = await api(`/api/v1/tracking/${current.session_id}/persons`);
    $("persons").replaceChildren(...persons.map((p) => {
      const li = document.createElement("li");
      li.append(chip(p.global_id), ` ${p.cameras.join(", ")} · ${localTime(p.first_seen)}–${localTime(p.last_seen)}`);
      if (p.merged_from) li.append(` · merged from ${p.merged_from.join(", ")}`);
      return li;
    }));
  } catch (e) { /* history not ready */ }
}
setInterval(refreshPersons, 5000);

// The video set's document (person_search, cameras), read when a session is shown.
let videoSetDoc = null;
async function onSessionShown(session) {
  selected.clear(); shownPerson = 0; personPath = null;
  $("person").classList.add("hidden");
  $("correction-status").textContent = "";
  showSelection();
  videoSetDoc = await api(`/api/v1/video-sets/${session.video_set}`).catch(() => null);
  refreshPersons();
}
