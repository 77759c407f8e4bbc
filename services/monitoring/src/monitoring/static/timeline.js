// Participant timeline: 5-minute reading rollups drawn as inline SVG, with alerts, ePRO and
// visits marked on the same time axis. No chart library.
"use strict";
(function () {
  const participant = document.body.dataset.participant;
  const charts = document.getElementById("charts");
  const range = document.getElementById("range");
  const SVG = "http://www.w3.org/2000/svg";
  const W = 900, H = 150, PAD_L = 48, PAD_R = 10, PAD_T = 10, PAD_B = 22;
  const UNITS = { "heart-rate": "beats/min", "oxygen-saturation": "%", "body-temperature": "C",
                  "respiratory-rate": "breaths/min", "step-count": "steps" };

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }
  const utc = (t) => new Date(t).toISOString().replace("T", " ").slice(0, 16) + " UTC";

  function chart(metric, points, t0, t1, alerts, events) {
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.metric = metric;
    const caption = document.createElement("figcaption");
    caption.textContent = metric + " (" + (UNITS[metric] || "") + "), " + points.length + " buckets";
    figure.appendChild(caption);
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric });
    figure.appendChild(svg);
    let lo = Math.min(...points.map((p) => p.min)), hi = Math.max(...points.map((p) => p.max));
    if (lo === hi) { lo -= 1; hi += 1; }
    const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
    const x = (t) => PAD_L + ((new Date(t) - t0) / (t1 - t0)) * (W - PAD_L - PAD_R);
    const y = (v) => PAD_T + (1 - (v - lo) / (hi - lo)) * (H - PAD_T - PAD_B);
    el("rect", { x: PAD_L, y: PAD_T, width: W - PAD_L - PAD_R, height: H - PAD_T - PAD_B, class: "plot" }, svg);
    for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
      el("line", { x1: PAD_L, x2: W - PAD_R, y1: y(v), y2: y(v), class: "grid" }, svg);
      el("text", { x: PAD_L - 4, y: y(v) + 4, class: "axis", "text-anchor": "end" }, svg).textContent = v.toFixed(metric === "body-temperature" ? 1 : 0);
    }
    [t0, new Date((+t0 + +t1) / 2), t1].forEach((t, i) => {
      const anchor = ["start", "middle", "end"][i];
      el("text", { x: x(t), y: H - 6, class: "axis", "text-anchor": anchor }, svg).textContent = utc(t).slice(5);
    });
    const band = points.map((p) => x(p.bucket) + "," + y(p.max)).concat(
      points.slice().reverse().map((p) => x(p.bucket) + "," + y(p.min)));
    el("polygon", { points: band.join(" "), class: "band" }, svg);
    el("polyline", { points: points.map((p) => x(p.bucket) + "," + y(p.mean)).join(" "), class: "mean" }, svg);
    for (const p of points) {
      const dot = el("circle", { cx: x(p.bucket), cy: y(p.mean), r: 1.8, class: "dot" }, svg);
      el("title", {}, dot).textContent = utc(p.bucket) + ": mean " + p.mean.toFixed(1) + ", " + p.min + "–" + p.max + " (n=" + p.n + ")";
    }
    for (const a of alerts.filter((a) => !a.metric || a.metric === metric)) {
      const line = el("line", { x1: x(a.detected_at), x2: x(a.detected_at), y1: PAD_T, y2: H - PAD_B, class: "alert-mark sev-" + a.severity }, svg);
      el("title", {}, line).textContent = utc(a.detected_at) + " " + a.rule + " (" + a.status + ")";
    }
    for (const e of events) {
      const mark = el("rect", { x: x(e.at) - 2, y: H - PAD_B - 8, width: 4, height: 8, class: "event-mark " + e.kind }, svg);
      el("title", {}, mark).textContent = utc(e.at) + " " + e.title;
    }
    return figure;
  }

  function item(list, when, text, cls) {
    const li = document.createElement("li");
    li.className = cls;
    const time = document.createElement("time");
    time.textContent = utc(when);
    li.append(time, " " + text);
    list.appendChild(li);
  }

  async function load() {
    const hours = Number(range.value);
    const to = new Date(Date.now() + 5 * 60000), from = new Date(to - hours * 3600000);
    const url = "/v1/participants/" + encodeURIComponent(participant) + "/timeline?from=" +
      encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString());
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) { charts.textContent = "timeline not available (" + r.status + ")"; return; }
    const data = await r.json();
    charts.replaceChildren();
    const metrics = Object.keys(data.readings);
    for (const m of metrics) charts.appendChild(chart(m, data.readings[m], from, to, data.alerts, data.events));
    if (!metrics.length) charts.textContent = "No readings in this range.";
    charts.dataset.state = "loaded";
    const alerts = document.getElementById("alerts"), events = document.getElementById("events");
    alerts.replaceChildren(); events.replaceChildren();
    for (const a of data.alerts) item(alerts, a.detected_at, "[" + a.severity + ", " + a.status + (a.overdue ? ", overdue" : "") + "] " + a.explanation, "alert-item sev-" + a.severity);
    for (const e of data.events) item(events, e.at, e.title, e.kind);
    if (!data.alerts.length) alerts.textContent = "No alerts in this range.";
    if (!data.events.length) events.textContent = "No ePRO or visit events in this range.";
  }

  range.addEventListener("change", load);
  load();
  setInterval(load, 60000);
})();
