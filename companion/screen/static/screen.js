// The class screen: draws /events snapshots (snapshot_to_json's keys) into tiles.
// Every value from the class goes in with textContent: a name is never parsed as HTML.
"use strict";

const TICKING = new Set(["running", "round_rest"]);
const BANNERS = {
  idle: "Get ready",
  paused: "Paused",
  done: "Well done!",
  stopped: "Class stopped",
};
const STALE_AFTER_MS = 5000; // the server sends at least once a second

let last = null; // { snapshot, at }: the last snapshot and when it came (performance.now())

function text(element, value) {
  const shown = value === null || value === undefined ? "" : String(value);
  if (element.textContent !== shown) element.textContent = shown;
}

function clock(seconds) {
  const whole = Math.max(0, Math.ceil(seconds));
  const minutes = Math.floor(whole / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return `${minutes}:${rest}`;
}

function element(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

function newTile(bandId) {
  const tile = element("article", "tile");
  tile.dataset.bandId = bandId;
  const name = element("div", "name");
  const heart = element("div", "heart");
  heart.append(element("span", "bpm"), element("span", "unit"), element("span", "percent"));
  const status = element("div", "status");
  status.append(
    element("span", "link"),
    element("span", "cue"),
    element("span", "missed"),
    element("span", "battery"),
    element("span", "stopped-label"),
  );
  const closer = element("div", "closer");
  closer.textContent = "come closer";
  closer.hidden = true;
  tile.append(name, heart, status, closer);
  return tile;
}

function signed(ms) {
  const rounded = Math.round(ms);
  return `${rounded > 0 ? "+" : rounded < 0 ? "−" : "±"}${Math.abs(rounded)} ms`;
}

function drawTile(tile, p) {
  tile.className = `tile zone-${p.zone}`;
  tile.classList.toggle("come-closer", p.come_closer);
  tile.classList.toggle("stopped", p.phase === "stopped");
  const q = (selector) => tile.querySelector(selector);
  text(q(".name"), p.name);
  text(q(".bpm"), p.heart_rate === null ? "–" : p.heart_rate);
  // A band that takes turns on the links is heard on its turns: its reading, with its age.
  const earlier = p.heart_rate !== null && !p.heart_rate_live;
  tile.classList.toggle("earlier", earlier);
  text(q(".unit"), earlier ? `bpm · ${Math.round(p.heart_rate_age_s)} s ago` : "bpm");
  text(q(".percent"), p.heart_rate_percent === null ? "" : `${p.heart_rate_percent} %`);
  const link = q(".link");
  text(link, p.link_up ? "● linked" : p.link_alert ? "link down" : "○ off link");
  link.className = `link${p.link_up ? "" : " off"}${p.link_alert ? " badge" : ""}`;
  text(q(".cue"), p.last_cue_error_ms === null ? "" : `cue ${signed(p.last_cue_error_ms)}`);
  text(q(".missed"), p.cues_missed > 0 ? `${p.cues_missed} missed` : "");
  const battery = q(".battery");
  text(battery, p.battery === null ? "" : p.battery_low ? `low battery ${p.battery} %` : `battery ${p.battery} %`);
  battery.className = `battery${p.battery_low ? " badge low" : ""}`;
  const stopped = q(".stopped-label");
  text(stopped, p.phase === "stopped" ? "stopped" : "");
  stopped.className = `stopped-label${p.phase === "stopped" ? " badge" : ""}`;
  q(".closer").hidden = !p.come_closer;
}

function layout(count) {
  // The columns that make the largest tiles of about 16:10 fill the space under the header.
  const area = document.getElementById("tiles");
  const width = area.clientWidth || window.innerWidth;
  const height = area.clientHeight || window.innerHeight * 0.85;
  let best = { cols: 1, size: 0 };
  for (let cols = 1; cols <= Math.max(1, count); cols += 1) {
    const rows = Math.ceil(Math.max(1, count) / cols);
    const size = Math.min(width / cols / 1.6, height / rows);
    if (size > best.size) best = { cols, size };
  }
  area.style.setProperty("--cols", best.cols);
  area.style.setProperty("--rows", Math.ceil(Math.max(1, count) / best.cols));
}

function draw(snapshot) {
  document.body.dataset.phase = snapshot.phase;
  text(document.getElementById("round"), snapshot.rounds ? `${snapshot.round} / ${snapshot.rounds}` : "–");
  text(document.getElementById("exercise"), snapshot.exercise || "–");
  text(document.getElementById("next-exercise"), snapshot.next_exercise || "–");
  const banner = document.getElementById("banner");
  const message = BANNERS[snapshot.phase];
  banner.hidden = !message;
  text(banner, message || "");

  const area = document.getElementById("tiles");
  const existing = new Map([...area.children].map((tile) => [tile.dataset.bandId, tile]));
  const wanted = snapshot.participants.map((p) => {
    const tile = existing.get(p.band_id) || newTile(p.band_id);
    drawTile(tile, p);
    return tile;
  });
  const same = wanted.length === area.children.length && wanted.every((t, i) => area.children[i] === t);
  if (!same) {
    area.replaceChildren(...wanted);
    layout(wanted.length);
  }
  tick();
}

function tick() {
  if (last === null) return;
  const { snapshot, at } = last;
  const passed = TICKING.has(snapshot.phase) ? (performance.now() - at) / 1000 : 0;
  text(document.getElementById("time-left"), clock(snapshot.step_remaining_s - passed));
  const classLeft = snapshot.total_s - snapshot.elapsed_s - passed;
  text(document.getElementById("class-left"), snapshot.total_s ? `class ${clock(classLeft)} left` : "");
  const stale = performance.now() - at > STALE_AFTER_MS;
  if (stale && document.body.dataset.connected === "true") showLost();
}

function showLost() {
  document.body.dataset.connected = "false";
  const banner = document.getElementById("banner");
  banner.hidden = false;
  text(banner, "Reconnecting to the class…");
}

function connect() {
  const events = new EventSource("/events");
  events.addEventListener("snapshot", (message) => {
    const snapshot = JSON.parse(message.data);
    last = { snapshot, at: performance.now() };
    document.body.dataset.connected = "true";
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
    draw(snapshot);
  });
  events.addEventListener("error", showLost);
}

window.addEventListener("resize", () => layout(document.getElementById("tiles").children.length));
setInterval(tick, 200);
connect();
