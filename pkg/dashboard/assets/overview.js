// The overview: one card per model with sparklines over the chosen range.
(function () {
  "use strict";
  const L = window.Lookout;
  const cards = document.getElementById("cards");

  function spark(row, name, label, xs, ys, latest, extra, range) {
    const chart = L.el("div", { class: "sparkline" });
    row.append(L.el("span", { text: label }), chart, L.el("span", { class: "v", text: latest }));
    const series = [{ stroke: "#0969da", width: 1.5, spanGaps: true }];
    const data = [xs, ys];
    if (extra) { series.push({ stroke: "#bf8700", width: 1.5, spanGaps: true }); data.push(extra); }
    requestAnimationFrame(() => L.chart(chart, name, {
      height: 36, minWidth: 40, legend: false, series: series, xmin: range[0], xmax: range[1],
      axes: [{ show: false }, { show: false }],
      extra: { cursor: { show: false }, padding: [2, 0, 2, 0] },
    }, data, extra ? [1, 2] : [1]));
  }

  function card(m, s, range) {
    const state = L.el("span", { class: "state " + m.state, text: m.state });
    const verdict = m.canary_verdict ? L.el("span", { class: "state verdict-" + m.canary_verdict, text: "canary " + m.canary_verdict }) : null;
    const head = L.el("h2", {}, L.el("a", { href: "/models/" + encodeURIComponent(m.name) + location.search, text: m.name }),
      L.el("span", {}, state, " ", verdict));
    const rows = L.el("div", { class: "spark" });
    const last = a => a && a.length ? a[a.length - 1] : null;
    if (s.t && s.t.length) {
      spark(rows, "spark-events", "events / min", s.t, s.events_per_min, L.fmt(last(s.events_per_min), 0), null, range);
      spark(rows, "spark-rejection-share", "rejection share", s.t, s.rejection_share, L.pct(last(s.rejection_share)), null, range);
      spark(rows, "spark-drift-share", "dataset drift share", s.t, s.drift_share, L.pct(last(s.drift_share)), null, range);
      if (s.confidence_mean.some(v => v !== null)) {
        spark(rows, "spark-confidence", "confidence mean", s.t, s.confidence_mean, L.fmt(last(s.confidence_mean)), null, range);
      }
    }
    const hasAcc = (s.accuracy || []).some(v => v !== null), hasEst = (s.estimated_accuracy || []).some(v => v !== null);
    if (hasAcc || hasEst) {
      const joined = uPlot.join([[s.perf_t || [], s.accuracy || []], [s.t || [], s.estimated_accuracy || []]]);
      spark(rows, "spark-accuracy", "accuracy real / est.", joined[0], joined[1], L.fmt(last(s.accuracy)), joined[2], range);
    }
    if (s.canary_t && s.canary_t.length) {
      spark(rows, "spark-canary-score", "canary score", s.canary_t, s.canary_score, L.fmt(last(s.canary_score), 0), null, range);
    }
    const alerts = L.el("ul", { class: "firing" });
    for (const a of m.alerts) alerts.append(L.alertItem(a));
    if (!m.alerts.length) alerts.append(L.el("li", { class: "muted", text: "no alerts firing" }));
    const when = m.drift ? L.el("div", { class: "muted", text: "latest window " + new Date(m.drift.end).toISOString().slice(0, 19).replace("T", " ") + " UTC" + (m.drift.version ? ", version " + m.drift.version : "") }) : null;
    return L.el("div", { class: "card", "data-model": m.name }, head, rows, alerts, when);
  }

  async function load() {
    const o = await L.get("/api/v1/overview?since=" + L.range());
    const sparks = new Map((o.sparks || []).map(s => [s.model, s]));
    cards.replaceChildren(...o.models.map(m => {
      const s = sparks.get(m.name) || {};
      return card(m, s, s.since ? [s.since, s.until] : [L.t(o.since), L.t(o.until)]);
    }));
    document.getElementById("empty").hidden = o.models.length > 0;
    const unknown = document.getElementById("unknown");
    unknown.hidden = !o.unknown_rejections;
    unknown.textContent = o.unknown_rejections + " input" + (o.unknown_rejections === 1 ? "" : "s") +
      " rejected in the last 7 days named no model that could be read (subject lookout.rejected._unknown): see `lookout tail rejected`.";
    if (o.last_report) L.setLast(o.last_report);
  }

  // Every model's series in one answer: at most one every 3 s, however
  // many models report.
  const reload = L.debounce(() => load().catch(e => console.warn(e)), 3000);
  L.setupRanges(reload);
  L.live(reload);
  load().catch(e => console.warn(e));
})();
