"""The dashboard: one self-contained HTML page (inline CSS, JS and SVG plots; nothing fetched but the collector's
own ``/api``). Panels: fleet overview, drift heatmap (feature × time, fleet PSI), per-device drill-down (PSI per
feature over time and operational signals), alerts (with an Acknowledge button). It refreshes every 5 s."""

from __future__ import annotations

__all__ = ["DASHBOARD_HTML"]

DASHBOARD_HTML = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edge collector</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 18px;font-size:18px}
main{display:grid;grid-template-columns:1fr 1fr;gap:14px;padding:14px}
section{background:#fff;border-radius:6px;padding:12px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:0 0 8px}
.cards{display:flex;gap:10px;flex-wrap:wrap}.card{background:#eef1f6;border-radius:5px;padding:8px 12px;min-width:90px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left}
tr.open td{background:#fde8e8}tr.acknowledged td{background:#fff6dc}
.wide{grid-column:1 / span 2}select{font-size:14px}
</style></head>
<body><header>edge collector &mdash; fleet drift</header>
<main>
<section id="overview"><h2>Fleet overview</h2><div class="cards" id="cards"></div></section>
<section id="devices-panel"><h2>Devices</h2><table id="devices"><thead><tr><th>device</th><th>model</th>
<th>max PSI</th><th>open alerts</th></tr></thead><tbody></tbody></table></section>
<section id="heatmap-panel" class="wide"><h2>Drift heatmap (fleet PSI, feature &times; time)</h2>
<svg id="heatmap" width="100%" height="40"></svg></section>
<section id="drill" class="wide"><h2>Device drill-down <select id="device-select"></select></h2>
<svg id="device-plot" width="100%" height="220"></svg><div id="device-ops"></div></section>
<section id="alerts-panel" class="wide"><h2>Alerts</h2><table id="alerts"><thead><tr><th>id</th><th>state</th>
<th>scope</th><th>feature</th><th>metric</th><th>value</th><th>message</th><th></th></tr></thead><tbody></tbody></table>
</section></main>
<script>
"use strict";
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
let selected = null;
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function cell(tr, text) {
  const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td;
}
async function get(path) { const r = await fetch(path, {cache: "no-store"}); return r.json(); }
function fmt(x) { return x === null || x === undefined ? "-" : (typeof x === "number" ? x.toPrecision(3) : x); }
function heatColor(v) {
  if (v === null) return "#eee";
  const t = Math.min(1, v / 0.5);  // PSI 0 -> green, 0.25 -> yellow, >= 0.5 -> red
  const r = Math.round(255 * Math.min(1, 2 * t)), g = Math.round(200 * Math.min(1, 2 * (1 - t)));
  return `rgb(${r},${g},60)`;
}
function drawHeatmap(h) {
  const svg = document.getElementById("heatmap");
  svg.replaceChildren();
  if (!h.cells || !h.cells.length) { svg.appendChild(el("text", {x: 8, y: 24}, "no data yet")); return; }
  const rowH = 16, left = 70, w = Math.max(svg.clientWidth || 900, 300) - left - 10;
  const cols = h.cells[0].length, cw = w / cols;
  svg.setAttribute("height", rowH * h.features.length + 24);
  h.features.forEach((f, i) => {
    svg.appendChild(el("text", {x: 4, y: i * rowH + 12, "font-size": 11}, f));
    h.cells[i].forEach((v, j) => {
      const r = el("rect", {x: left + j * cw, y: i * rowH, width: Math.max(cw - 1, 1), height: rowH - 2,
        fill: heatColor(v), "class": "heat", "data-feature": f, "data-value": v === null ? "" : v});
      r.appendChild(el("title", {}, `${f}: ${fmt(v)}`));
      svg.appendChild(r);
    });
  });
  svg.appendChild(el("text", {x: left, y: rowH * h.features.length + 16, "font-size": 11}, "older \u2192 newer"));
}
function drawLines(svg, s) {
  svg.replaceChildren();
  if (!s.values || !s.values.length) { svg.appendChild(el("text", {x: 8, y: 24}, "no data yet")); return; }
  const W = Math.max(svg.clientWidth || 900, 300), H = 200, L = 40;
  let ymax = 0.3;
  s.values.forEach(row => row.forEach(v => { if (v !== null && v > ymax) ymax = v; }));
  const n = s.values.length, x = i => L + (W - L - 10) * (n > 1 ? i / (n - 1) : 0);
  const y = v => H - 10 - (H - 20) * v / ymax;
  svg.appendChild(el("line", {x1: L, x2: W - 10, y1: y(0.25), y2: y(0.25), stroke: "#d62728",
    "stroke-dasharray": "4 3"}));
  svg.appendChild(el("text", {x: 2, y: y(0.25) + 4, "font-size": 10, fill: "#d62728"}, "0.25"));
  s.features.forEach((f, k) => {
    const pts = s.values.map((row, i) => row[k] === null ? null : `${x(i)},${y(row[k])}`).filter(p => p).join(" ");
    svg.appendChild(el("polyline", {points: pts, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 1.5,
      "class": "series", "data-feature": f}));
  });
}
async function ackAlert(id) { await fetch(`/api/alerts/${id}/ack`, {method: "POST"}); refresh(); }
async function refresh() {
  const [sum, devices, alerts] = await Promise.all([get("/api/summary"), get("/api/devices"), get("/api/alerts")]);
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  const c = sum.counters || {};
  [["devices", sum.devices], ["records", sum.stored_records], ["rejects", c.rejects], ["duplicates", c.duplicates],
   ["open alerts", sum.open_alerts]].forEach(([k, v]) => {
    const d = document.createElement("div"); d.className = "card"; d.id = "card-" + k.replace(" ", "-");
    d.innerHTML = `<b>${v === undefined ? 0 : v}</b>${k}`; cards.appendChild(d);
  });
  const tb = document.querySelector("#devices tbody");
  tb.replaceChildren();
  const sel = document.getElementById("device-select");
  const known = Array.from(sel.options).map(o => o.value).join();
  if (known !== devices.map(d => d.device).join()) {
    sel.replaceChildren();
    devices.forEach(d => {
      const o = document.createElement("option"); o.value = o.textContent = d.device; sel.appendChild(o);
    });
  }
  let worst = null;
  devices.forEach(d => {
    const tr = document.createElement("tr"); tr.className = d.open_alerts ? "open" : "";
    cell(tr, d.device); cell(tr, d.model); cell(tr, fmt(d.psi_max)); cell(tr, d.open_alerts);
    tr.onclick = () => { sel.value = d.device; selected = d.device; refresh(); };
    tb.appendChild(tr);
    if (worst === null || (d.psi_max || 0) > (worst.psi_max || 0)) worst = d;
  });
  if (selected === null && worst !== null) selected = worst.device;
  if (selected !== null) sel.value = selected;
  const at = document.querySelector("#alerts tbody");
  at.replaceChildren();
  alerts.forEach(a => {
    const tr = document.createElement("tr"); tr.className = a.state;
    [a.id, a.state, a.scope, a.feature, a.metric, fmt(a.value), a.message].forEach(v => cell(tr, v));
    const td = cell(tr, "");
    if (a.state === "open") { const b = document.createElement("button"); b.textContent = "Acknowledge";
      b.onclick = () => ackAlert(a.id); td.appendChild(b); }
    at.appendChild(tr);
  });
  const model = (devices.find(d => d.device === selected) || devices[0] || {}).model;
  if (model) {
    const q = s => `scope=${encodeURIComponent(s)}&model=${encodeURIComponent(model)}`;
    const [heat, ds] = await Promise.all([get(`/api/heatmap?${q("fleet")}&metric=psi`),
                                          get(`/api/drift?${q(selected)}&metric=psi`)]);
    drawHeatmap(heat);
    drawLines(document.getElementById("device-plot"), ds);
    const ops = await Promise.all(["deadline_miss_rate", "fallback_rate", "p99_latency_us", "confidence_mean"]
      .map(m => get(`/api/drift?${q(selected)}&metric=${m}`)));
    document.getElementById("device-ops").textContent = ops.map(o => {
      const v = o.values.length ? o.values[o.values.length - 1][0] : null;
      return `${o.metric}: ${fmt(v)}`;
    }).join("  |  ");
  } else { drawHeatmap({}); }
  document.body.dataset.refreshed = String(Date.now());
}
document.getElementById("device-select").onchange = e => { selected = e.target.value; refresh(); };
refresh();
setInterval(refresh, 5000);
</script></body></html>
"""
