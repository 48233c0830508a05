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
      height: 36, legend: false, series: series, xmin: range[0], xmax: range[1],
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
    const d = s.drift || [];
    if (d.length) {
      const xs = d.map(p => L.t(p.end));
      const perMin = d.map(p => { const mins = (L.t(p.end) - L.t(p.start)) / 60; return mins > 0 ? p.count / mins : null; });
      spark(rows, "spark-events", "events / min", xs, perMin, L.fmt(perMin[perMin.length - 1], 0), null, range);
      const rej = d.map(p => (p.rejected + p.count) > 0 ? p.rejected / (p.rejected + p.count) : 0);
      spark(rows, "spark-rejection-share", "rejection share", xs, rej, L.pct(rej[rej.length - 1]), null, range);
      spark(rows, "spark-drift-share", "dataset drift share", xs, d.map(p => p.drift_share), L.pct(d[d.length - 1].drift_share), null, range);
      if (d.some(p => p.confidence_mean !== undefined)) {
        spark(rows, "spark-confidence", "confidence mean", xs, d.map(p => p.confidence_mean ?? null), L.fmt(d[d.length - 1].confidence_mean), null, range);
      }
    }
    const perf = s.performance || [];
    const est = d.filter(p => p.estimated_accuracy !== undefined);
    if (perf.some(p => p.accuracy !== undefined) || est.length) {
      const joined = uPlot.join([
        [perf.map(p => L.t(p.end)), perf.map(p => p.accuracy ?? null)],
        [est.map(p => L.t(p.end)), est.map(p => p.estimated_accuracy)],
      ]);
      const lastAcc = perf.length ? perf[perf.length - 1].accuracy : null;
      spark(rows, "spark-accuracy", "accuracy real / est.", joined[0], joined[1], L.fmt(lastAcc), joined[2], range);
    }
    const c = s.canary || [];
    if (c.length) {
      spark(rows, "spark-canary-score", "canary score", c.map(p => L.t(p.end)), c.map(p => p.score), L.fmt(c[c.length - 1].score, 0), null, range);
    }
    const alerts = L.el("ul", { class: "firing" });
    for (const a of m.alerts) alerts.append(L.alertItem(a));
    if (!m.alerts.length) alerts.append(L.el("li", { class: "muted", text: "no alerts firing" }));
    const when = m.drift ? L.el("div", { class: "muted", text: "latest window " + new Date(m.drift.end).toISOString().slice(0, 19).replace("T", " ") + " UTC" + (m.drift.version ? ", version " + m.drift.version : "") }) : null;
    return L.el("div", { class: "card", "data-model": m.name }, head, rows, alerts, when);
  }

  async function load() {
    const o = await L.get("/api/v1/overview?since=" + L.range());
    const series = new Map((o.series || []).map(s => [s.model, s]));
    const range = [L.t(o.since), L.t(o.until)];
    cards.replaceChildren(...o.models.map(m => card(m, series.get(m.name) || {}, range)));
    document.getElementById("empty").hidden = o.models.length > 0;
    const unknown = document.getElementById("unknown");
    unknown.hidden = !o.unknown_rejections;
    unknown.textContent = o.unknown_rejections + " input" + (o.unknown_rejections === 1 ? "" : "s") +
      " rejected in the last 7 days named no model that could be read (subject lookout.rejected._unknown): see `lookout tail rejected`.";
    if (o.last_report) L.setLast(o.last_report);
  }

  const reload = L.debounce(() => load().catch(e => console.warn(e)), 1000);
  L.setupRanges(reload);
  L.live(reload);
  load().catch(e => console.warn(e));
})();
