// wandist status page: polls state.json once a second and redraws.
// Plain DOM, no framework; every value goes in as text, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const MIN_SLOTS = 30; // a sparkline spans its samples (up to 300: 5 minutes), at least 30 seconds
let lastOK = 0;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function seconds(s) {
  if (s < 0.001) return "0";
  if (s < 1) return (s * 1000).toFixed(1) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function ago(iso, now) {
  const t = Date.parse(iso);
  if (!t) return "";
  return seconds(Math.max(0, (Date.parse(now) - t) / 1000)) + " ago";
}

// sparkline draws queued messages over time, one sample a second, newest
// at the right edge, scaled to the samples held and their maximum.
function sparkline(values) {
  const w = 200, h = 28;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const max = values.reduce((m, v) => Math.max(m, v), 0);
  const last = values.length ? values[values.length - 1] : 0;
  svg.dataset.max = max;
  svg.dataset.last = last;
  svg.dataset.samples = values.length;
  const title = document.createElementNS(SVG, "title");
  title.textContent = `queued messages over the last ${values.length} s: max ${max}, now ${last}`;
  svg.appendChild(title);
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("x1", 0); base.setAttribute("x2", w);
  base.setAttribute("y1", h - 1); base.setAttribute("y2", h - 1);
  svg.appendChild(base);
  if (values.length > 0) {
    const dx = w / (Math.max(values.length, MIN_SLOTS) - 1);
    const x0 = w - dx * (values.length - 1);
    const pts = values.map((v, i) =>
      `${(x0 + i * dx).toFixed(1)},${(h - 1 - (max ? v / max : 0) * (h - 3)).toFixed(1)}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
  }
  return svg;
}

function renderAlerts(st) {
  const ul = document.getElementById("alerts");
  ul.replaceChildren(...st.alerts.map(a => {
    const li = el("li");
    li.dataset.kind = a.kind;
    if (a.peer) li.dataset.peer = a.peer;
    li.append(el("strong", a.kind + (a.peer ? " " + a.peer : "")), ": " + a.text);
    if (a.since) li.append(" (since " + ago(a.since, st.time) + ")");
    return li;
  }));
  document.getElementById("no-alerts").hidden = st.alerts.length > 0;
}

function renderLinks(st) {
  const body = document.querySelector("#links tbody");
  body.replaceChildren(...st.links.map(l => {
    const tr = el("tr");
    tr.dataset.peer = l.peer;
    const state = el("td", l.state, "state state-" + l.state);
    if (l.last_error) state.title = l.last_error;
    const rtt = l.state === "up" ? seconds(l.rtt_seconds) : "";
    const spark = el("td", null, "history");
    spark.appendChild(sparkline(l.history));
    const peak = Math.max(0, ...l.history);
    const peakCell = el("td", peak ? "max " + peak : "", "num quiet peak");
    tr.append(el("td", l.peer, "peer"), state, el("td", ago(l.since, st.time)),
      el("td", l.transport, "transport"), el("td", rtt, "num rtt"),
      el("td", l.queued_messages, "num queued"), el("td", bytes(l.queued_bytes), "num"),
      el("td", l.queued_messages ? seconds(l.oldest_seconds) : "", "num"), spark, peakCell);
    return tr;
  }));
  document.getElementById("no-links").hidden = st.links.length > 0;
}

function renderGroups(st) {
  const body = document.querySelector("#groups tbody");
  body.replaceChildren(...st.groups.map(g => {
    const tr = el("tr");
    tr.dataset.group = g.name;
    const nodes = el("td", null, "nodes");
    g.nodes.forEach((n, i) => {
      if (i) nodes.append(", ");
      nodes.append(el("span", `${n.node} (${n.members})`, n.reachable ? "reachable" : "unreachable"));
    });
    tr.append(el("td", g.name), el("td", g.members, "num members"),
      el("td", g.reachable, "num reachable"), nodes);
    return tr;
  }));
  document.getElementById("no-groups").hidden = st.groups.length > 0;
  document.getElementById("groups-hidden").textContent =
    st.groups_hidden ? `${st.groups_hidden} more groups not shown` : "";
}

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const resp = await fetch("state.json", { cache: "no-store", credentials: "same-origin" });
    if (resp.status === 401) {
      updated.textContent = "not authorised: open /ui/?token=TOKEN once";
      updated.className = "stale";
      return;
    }
    if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
    const st = await resp.json();
    document.getElementById("self").textContent = st.cluster + "/" + st.node;
    document.title = "wandist " + st.cluster + "/" + st.node;
    renderAlerts(st);
    renderLinks(st);
    renderGroups(st);
    lastOK = Date.now();
    updated.textContent = "updated " + new Date(st.time).toLocaleTimeString();
    updated.className = "quiet";
  } catch (e) {
    updated.textContent = "no answer from the daemon" +
      (lastOK ? " since " + new Date(lastOK).toLocaleTimeString() : "") + ": " + e.message;
    updated.className = "stale";
  }
}

// One request at a time: the next starts a second after the last ended.
async function loop() {
  await refresh();
  setTimeout(loop, 1000);
}
loop();
