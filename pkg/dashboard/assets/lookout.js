// Shared helpers of the dashboard's pages: ranges, the API, uPlot charts
// and the live event stream. No globals but window.Lookout.
(function () {
  "use strict";
  const L = {};

  L.ranges = { "1h": 3600, "24h": 86400, "7d": 7 * 86400 };

  L.range = function () {
    const r = new URLSearchParams(location.search).get("range");
    return L.ranges[r] ? r : "24h";
  };

  // setupRanges marks the current range and reloads data on a change
  // (history.replaceState: no page load).
  L.setupRanges = function (onChange) {
    const nav = document.getElementById("ranges");
    const mark = () => nav.querySelectorAll("button").forEach(b => b.classList.toggle("on", b.dataset.range === L.range()));
    nav.addEventListener("click", e => {
      const r = e.target.dataset && e.target.dataset.range;
      if (!r) return;
      const u = new URL(location.href);
      u.searchParams.set("range", r);
      history.replaceState(null, "", u);
      mark();
      onChange();
    });
    mark();
  };

  L.get = async function (url) {
    const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(url + ": " + res.status);
    return res.json();
  };

  L.post = async function (url, body) {
    const res = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || res.status);
    return data;
  };

  L.t = iso => Date.parse(iso) / 1000;

  L.fmt = function (v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const d = digits === undefined ? 3 : digits;
    // p-values: keep the small ones readable.
    if (v !== 0 && Math.abs(v) < 10 ** -d) return v.toExponential(2);
    return (Math.round(v * 10 ** d) / 10 ** d).toString();
  };

  L.pct = v => (v === null || v === undefined) ? "–" : L.fmt(100 * v, 1) + "%";

  L.ago = function (iso) {
    if (!iso) return "never";
    const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (s < 0) return "just now";
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  };

  L.el = function (tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  };

  // countPoints counts the non-null values of the series that carry data
  // (indexes in which; reference lines are not counted).
  L.countPoints = function (data, which) {
    let n = 0;
    for (const i of which) for (const v of data[i] || []) if (v !== null && v !== undefined) n++;
    return n;
  };

  const charts = new Map();

  // chart draws (or redraws) a uPlot time series in el: opts.series are
  // uPlot series after x, data is [xs, ys...], counted lists which series
  // are data. The element states data-chart and data-points.
  L.chart = function (el, name, opts, data, counted) {
    el.dataset.chart = name;
    el.dataset.points = String(L.countPoints(data, counted));
    const old = charts.get(el);
    if (old) old.destroy();
    const width = Math.max(opts.minWidth || 200, el.clientWidth || 300);
    const o = Object.assign({
      width: width, height: opts.height || 200,
      legend: { show: opts.legend !== false },
      cursor: opts.sync ? { sync: { key: opts.sync } } : {},
      scales: { x: { time: true, min: opts.xmin, max: opts.xmax } },
      axes: opts.axes,
    }, opts.extra || {});
    o.series = [{}].concat(opts.series);
    if (!o.axes) delete o.axes;
    const u = new uPlot(o, data, el);
    charts.set(el, u);
    return u;
  };

  // dots draws points only (markers).
  L.dots = (u, seriesIdx, idx0, idx1) => null;

  // live opens the server-sent event stream and keeps the "last report"
  // line current; onUpdate gets each update.
  L.live = function (onUpdate) {
    const live = document.getElementById("live");
    let last = null;
    const show = () => { live.textContent = "live · last report " + L.ago(last); };
    L.setLast = iso => { if (iso && (!last || Date.parse(iso) > Date.parse(last))) { last = iso; show(); } };
    const es = new EventSource("/api/v1/events", { withCredentials: true });
    es.addEventListener("open", () => live.classList.add("on"));
    es.addEventListener("error", () => { live.classList.remove("on"); live.textContent = "reconnecting…"; });
    es.addEventListener("hello", e => { const d = JSON.parse(e.data); if (!d.last_report.startsWith("0001")) L.setLast(d.last_report); else show(); });
    es.addEventListener("update", e => {
      const u = JSON.parse(e.data);
      if (u.kind !== "alerts" && u.kind !== "silence") L.setLast(u.at);
      onUpdate(u);
    });
    setInterval(show, 5000);
  };

  // debounce runs f once, ms after the first of a burst of calls: a
  // steady stream of updates still redraws once per ms.
  L.debounce = function (f, ms) {
    let t = null;
    return function () {
      if (t !== null) return;
      t = setTimeout(() => { t = null; f(); }, ms);
    };
  };

  L.alertItem = function (a) {
    const labels = Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
    return L.el("li", { class: a.silenced ? "silenced" : "" },
      L.el("span", { class: a.severity, text: a.rule }), " ", a.summary || "", labels ? L.el("span", { class: "tag", text: labels }) : null,
      a.silenced ? L.el("span", { class: "tag", text: "silenced" }) : null);
  };

  window.Lookout = L;
})();
