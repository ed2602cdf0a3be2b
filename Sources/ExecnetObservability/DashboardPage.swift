// The dashboard page `GET /` serves: one self-contained HTML document, CSS and JS inline, nothing
// loaded from elsewhere (the Content-Security-Policy forbids it). The script opens `events` (with
// the page's own `token` query parameter, since an EventSource cannot send headers), renders each
// status with DOM calls and textContent only (names, causes and stderr lines come from peers and
// are never parsed as HTML), and keeps the last five minutes of rates for its plots in the browser.
// Elements carry stable ids and data attributes (data-host, data-client, data-gateway,
// data-death-gateway, data-signal) for tests and scripts.

/// The dashboard's HTML.
let dashboardPageHTML = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>execnet broker</title>
<style>
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2430; --muted:#677285; --line:#e2e6ec; --accent:#2f6fdf; --accent2:#19a974; --warn:#d98c00; --bad:#d64545; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; background:#1d2430; color:#fff; }
header h1 { font-size:17px; margin:0; font-weight:600; }
header .meta { color:#b9c2d0; font-size:13px; }
#connection { margin-left:auto; font-size:12px; padding:3px 10px; border-radius:10px; background:#59616e; }
#connection[data-state="live"] { background:var(--accent2); }
#connection[data-state="lost"] { background:var(--bad); }
main { display:grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap:16px; padding:16px 20px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 8px; font-weight:600; }
#summary { grid-column: 1 / -1; display:flex; flex-wrap:wrap; gap:10px 28px; }
.figure { display:flex; flex-direction:column; }
.figure b { font-size:20px; font-weight:600; font-variant-numeric: tabular-nums; }
.figure span { color:var(--muted); font-size:12px; }
table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
th { text-align:left; color:var(--muted); font-weight:500; font-size:12px; border-bottom:1px solid var(--line); padding:4px 6px; }
td { border-bottom:1px solid var(--line); padding:5px 6px; vertical-align:middle; }
tr:last-child td { border-bottom:none; }
.bar { position:relative; width:120px; height:10px; background:#e8ecf2; border-radius:5px; overflow:hidden; display:inline-block; vertical-align:middle; margin-right:6px; }
.bar i { position:absolute; left:0; top:0; bottom:0; background:var(--accent); }
.bar i.full { background:var(--warn); }
.muted { color:var(--muted); }
.empty { color:var(--muted); font-style:italic; padding:4px 0; }
.client { margin-bottom:10px; }
.client h3 { font-size:13px; margin:6px 0 4px; font-weight:600; }
.dot { display:inline-block; width:8px; height:8px; border-radius:4px; margin-right:5px; background:var(--warn); }
.dot.on { background:var(--accent2); }
.plot { display:flex; align-items:center; gap:12px; margin:4px 0 10px; }
.plot svg { flex:1; height:56px; background:#fafbfc; border:1px solid var(--line); border-radius:4px; }
.plot .legend { width:150px; font-size:12px; }
.plot .legend b { font-size:15px; font-variant-numeric: tabular-nums; }
.in { color:var(--accent); } .out { color:var(--accent2); }
#deaths-list { list-style:none; margin:0; padding:0; }
#deaths-list li { border-left:3px solid var(--bad); padding:4px 8px; margin-bottom:8px; background:#fdf5f5; border-radius:0 4px 4px 0; }
#deaths-list .what { font-weight:600; }
#deaths-list pre { margin:4px 0 0; padding:4px 6px; background:#1d2430; color:#e6e9ef; border-radius:4px; font-size:12px; white-space:pre-wrap; word-break:break-all; max-height:110px; overflow:auto; }
.tag { display:inline-block; font-size:11px; padding:0 6px; border-radius:8px; background:#eef1f5; color:var(--muted); margin-left:4px; }
.tag.bad { background:#fbe3e3; color:var(--bad); }
</style>
</head>
<body>
<header>
  <h1>execnet broker</h1>
  <span class="meta" id="broker-meta">connecting…</span>
  <span id="connection" data-state="connecting">connecting</span>
</header>
<main>
  <section id="summary"></section>
  <section id="hosts-section"><h2>Hosts</h2><table id="hosts"><thead><tr><th>Agent</th><th>Hostname</th><th>Slots used</th><th>Load</th></tr></thead><tbody></tbody></table></section>
  <section id="rates-section"><h2>Traffic, up to the last 5 minutes</h2>
    <div class="plot"><svg id="plot-messages" viewBox="0 0 300 56" preserveAspectRatio="none"></svg><div class="legend" id="legend-messages"></div></div>
    <div class="plot"><svg id="plot-bytes" viewBox="0 0 300 56" preserveAspectRatio="none"></svg><div class="legend" id="legend-bytes"></div></div>
  </section>
  <section id="gateways-section"><h2>Gateways by client</h2><div id="gateways"></div></section>
  <section id="stalls-section"><h2>Credit stalls</h2><div id="stalls"></div></section>
  <section id="deaths-section"><h2>Recent deaths</h2><ol id="deaths-list"></ol></section>
</main>
<script>
"use strict";
const HISTORY_SECONDS = 300;
const history = [];
let previous = null;

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function svgEl(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}
function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}
function rate(n) { return n >= 100 ? n.toFixed(0) : n.toFixed(1); }
function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return seconds + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
  return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
}
function figure(id, value, label) { return el("div", {class: "figure", id: id}, el("b", {}, value), el("span", {}, label)); }

function renderSummary(s) {
  document.getElementById("broker-meta").textContent =
    "pid " + s.pid + " · up " + duration(s.uptime_s) + " · " + (s.endpoints || []).join(" ");
  const last = history[history.length - 1];
  const memory = s.memory_cap_bytes !== undefined
    ? figure("figure-memory", bytes((s.in_flight_bytes || 0) + (s.queued_bytes || 0)), "held of " + bytes(s.memory_cap_bytes) + " cap") : null;
  document.getElementById("summary").replaceChildren(...[
    figure("figure-hosts", s.hosts.length, "hosts"),
    figure("figure-clients", s.clients, "clients"),
    figure("figure-workers", s.workers, "workers"),
    figure("figure-gateways", s.gateways.length, "gateways"),
    figure("figure-channels", s.channels, "open channels"),
    figure("figure-rate-in", rate(s.rate_in), "messages in / s"),
    figure("figure-rate-out", rate(s.rate_out), "messages out / s"),
    figure("figure-bytes", last && last.bytesPerSecond !== null ? bytes(last.bytesPerSecond) + "/s" : "–", "channel data"),
    memory,
    figure("figure-stalls", s.credit_stalls ? s.credit_stalls.blocked : "–", "blocked on credit"),
    figure("figure-deaths", (s.recent_deaths || []).length, "recent deaths")].filter(node => node !== null));
}

function renderHosts(s) {
  const body = document.querySelector("#hosts tbody");
  const rows = s.hosts.map(host => {
    const used = host.slots > 0 ? Math.min(1, host.workers / host.slots) : 0;
    const bar = el("span", {class: "bar"}, el("i", {class: used >= 1 ? "full" : "", style: "width:" + (used * 100).toFixed(1) + "%"}));
    let load = el("span", {class: "muted"}, "not reported");
    if (host.load) {
      const l = host.load;
      const parts = [];
      if (l.loadAverage1 !== undefined) parts.push(l.loadAverage1.toFixed(2) + " / " + (l.loadAverage5 || 0).toFixed(2) + " / " + (l.loadAverage15 || 0).toFixed(2));
      if (l.cpus !== undefined) parts.push(l.cpus + " cpus");
      if (l.memoryTotalBytes) parts.push(bytes(l.memoryAvailableBytes) + " of " + bytes(l.memoryTotalBytes) + " free");
      load = el("span", {class: "load"}, parts.join(" · "));
      if (l.secondsSinceReport !== undefined && l.secondsSinceReport > 30) load.append(el("span", {class: "tag bad"}, "stale " + duration(l.secondsSinceReport)));
    }
    return el("tr", {"data-host": host.name},
      el("td", {}, host.name), el("td", {class: "muted"}, host.hostname),
      el("td", {class: "slots", "data-workers": host.workers, "data-slots": host.slots}, bar, host.workers + " / " + host.slots),
      el("td", {}, load));
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", {colspan: 4, class: "empty"}, "no host agent registered")));
  body.replaceChildren(...rows);
}

function renderGateways(s) {
  const clients = new Map();
  for (const gateway of s.gateways) {
    const label = gateway.client || "unknown client";
    if (!clients.has(label)) clients.set(label, []);
    clients.get(label).push(gateway);
  }
  const blocks = [];
  for (const [label, gateways] of [...clients.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const rows = gateways.map(g => el("tr", {"data-gateway": g.gateway, "data-host": g.host},
      el("td", {}, el("span", {class: "dot" + (g.connected ? " on" : "")}), g.gateway),
      el("td", {}, g.host), el("td", {class: "muted"}, g.pid || "–"),
      el("td", {"data-channels": g.channels}, g.channels)));
    blocks.push(el("div", {class: "client", "data-client": label},
      el("h3", {}, label, el("span", {class: "tag"}, gateways.length + (gateways.length === 1 ? " gateway" : " gateways"))),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Gateway"), el("th", {}, "Host"), el("th", {}, "Pid"), el("th", {}, "Channels"))),
        el("tbody", {}, ...rows))));
  }
  if (blocks.length === 0) blocks.push(el("div", {class: "empty"}, "no gateway"));
  document.getElementById("gateways").replaceChildren(...blocks);
}

function renderStalls(s) {
  const box = document.getElementById("stalls");
  const stalls = s.credit_stalls;
  if (!stalls) { box.replaceChildren(el("div", {class: "empty"}, "not reported by this broker")); return; }
  const head = el("div", {id: "stalls-summary", "data-blocked": stalls.blocked},
    stalls.blocked + (stalls.blocked === 1 ? " channel direction" : " channel directions") + " waiting for credit",
    stalls.started !== undefined ? el("span", {class: "tag"}, stalls.started + (stalls.started === 1 ? " stall" : " stalls") + " since start") : null);
  const rows = stalls.channels.map(c => el("tr", {"data-stall": c.gateway + ":" + c.channel + ":" + c.direction},
    el("td", {}, c.gateway), el("td", {}, c.channel),
    el("td", {class: "muted"}, c.direction === "to_worker" ? "client waits for the worker" : "worker waits for the client")));
  box.replaceChildren(head);
  if (rows.length) box.append(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Gateway"), el("th", {}, "Channel"), el("th", {}, "Who waits"))), el("tbody", {}, ...rows)));
}

function renderDeaths(s) {
  const items = (s.recent_deaths || []).map(d => {
    const how = d.signal !== undefined ? "signal " + d.signal : d.exit_status !== undefined ? "exit status " + d.exit_status : "lost";
    return el("li", {"data-death-gateway": d.gateway, "data-signal": d.signal, "data-exit-status": d.exit_status},
      el("div", {class: "what"}, d.gateway + " on " + d.host, el("span", {class: "tag bad"}, how),
        el("span", {class: "tag"}, d.client), el("span", {class: "tag"}, duration(d.seconds_ago) + " ago")),
      el("div", {class: "cause"}, d.cause),
      d.stderr && d.stderr.length ? el("pre", {class: "stderr"}, d.stderr.join("\n")) : null);
  });
  if (items.length === 0) items.push(el("li", {class: "empty", style: "border:none;background:none"}, "no worker died"));
  document.getElementById("deaths-list").replaceChildren(...items);
}

function sparkline(svg, series, colors) {
  const now = Date.now() / 1000;
  // The x axis spans the history kept (20 s at least, 5 minutes at most), so a young page fills it.
  const span = history.length ? Math.min(HISTORY_SECONDS, Math.max(20, now - history[0].t)) : HISTORY_SECONDS;
  let max = 1;
  for (const values of series) for (const p of values) max = Math.max(max, p.v);
  const children = [];
  series.forEach((values, i) => {
    if (values.length < 2) return;
    const points = values.map(p => ((span - (now - p.t)) / span * 300).toFixed(1) + "," + (54 - p.v / max * 50).toFixed(1)).join(" ");
    children.push(svgEl("polyline", {points: points, fill: "none", stroke: colors[i], "stroke-width": 1.5, "vector-effect": "non-scaling-stroke"}));
  });
  svg.replaceChildren(...children);
  svg.setAttribute("data-points", series.reduce((n, values) => n + values.length, 0));
}

function renderRates(s) {
  const now = Date.now() / 1000;
  let bytesPerSecond = null;
  if (previous && s.data_bytes !== undefined && previous.status.data_bytes !== undefined && now > previous.t) {
    bytesPerSecond = Math.max(0, (s.data_bytes - previous.status.data_bytes) / (now - previous.t));
  }
  history.push({t: now, rateIn: s.rate_in, rateOut: s.rate_out, bytesPerSecond: bytesPerSecond});
  while (history.length && now - history[0].t > HISTORY_SECONDS) history.shift();
  previous = {t: now, status: s};
  sparkline(document.getElementById("plot-messages"),
    [history.map(h => ({t: h.t, v: h.rateIn})), history.map(h => ({t: h.t, v: h.rateOut}))], ["#2f6fdf", "#19a974"]);
  sparkline(document.getElementById("plot-bytes"),
    [history.filter(h => h.bytesPerSecond !== null).map(h => ({t: h.t, v: h.bytesPerSecond}))], ["#8a5cd6"]);
  const peakIn = Math.max(0, ...history.map(h => h.rateIn));
  document.getElementById("legend-messages").replaceChildren(
    el("div", {}, el("b", {class: "in"}, rate(s.rate_in)), " in/s  ", el("b", {class: "out"}, rate(s.rate_out)), " out/s"),
    el("div", {class: "muted"}, "messages · peak " + rate(peakIn) + "/s"));
  document.getElementById("legend-bytes").replaceChildren(
    el("div", {}, el("b", {style: "color:#8a5cd6"}, bytesPerSecond === null ? "–" : bytes(bytesPerSecond) + "/s")),
    el("div", {class: "muted"}, "channel data · " + bytes(s.data_bytes || 0) + " total"));
}

function render(s) {
  renderRates(s);
  renderSummary(s);
  renderHosts(s);
  renderGateways(s);
  renderStalls(s);
  renderDeaths(s);
  document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || 0) + 1));
}

const token = new URLSearchParams(location.search).get("token");
const source = new EventSource("events" + (token ? "?token=" + encodeURIComponent(token) : ""));
const connection = document.getElementById("connection");
source.onopen = () => { connection.dataset.state = "live"; connection.textContent = "live"; };
source.onerror = () => { connection.dataset.state = "lost"; connection.textContent = "reconnecting"; };
source.onmessage = event => {
  connection.dataset.state = "live"; connection.textContent = "live";
  render(JSON.parse(event.data));
};
</script>
</body>
</html>
"""#
