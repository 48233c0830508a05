// A model's page: its history on one time axis, the feature table of a
// chosen window, versions, alerts and silences.
(function () {
  "use strict";
  const L = window.Lookout;
  const model = document.body.dataset.model;
  const api = "/api/v1/models/" + encodeURIComponent(model);
  let series = null;
  let chosenSeq = null;
  let chosenReport = null;
  let pickedFeature = null;
  let sort = { key: "severity", asc: false };
  let tableRows = [];

  const $ = id => document.getElementById(id);
  const dashed = [6, 4];
  const noPath = () => null;

  function range() { return [L.t(series.since), L.t(series.until)]; }

  function drawDriftShare() {
    const d = series.drift;
    const xs = d.map(p => L.t(p.end));
    const r = range();
    L.chart($("c-drift-share"), "drift-share", {
      sync: "model", xmin: r[0], xmax: r[1],
      series: [
        { label: "drift share", stroke: "#0969da", width: 2, spanGaps: true },
        { label: "dataset drifted", stroke: "#cf222e", paths: noPath, points: { show: true, size: 7, fill: "#cf222e" } },
        { label: "reference", stroke: "#6e7781", dash: dashed, width: 1 },
      ],
      extra: { scales: { x: { time: true, min: r[0], max: r[1] }, y: { range: [0, 1] } } },
    }, [xs, d.map(p => p.drift_share), d.map(p => p.dataset_drifted ? p.drift_share : null), d.map(() => 0)], [1]);
  }

  function drawConfidence() {
    const d = series.drift.filter(p => p.confidence_mean !== undefined);
    const r = range();
    L.chart($("c-confidence"), "confidence", {
      sync: "model", xmin: r[0], xmax: r[1],
      series: [
        { label: "mean", stroke: "#0969da", width: 2 },
        { label: "p10", stroke: "#8250df", width: 1.5 },
        { label: "reference mean", stroke: "#0969da", dash: dashed, width: 1 },
        { label: "reference p10", stroke: "#8250df", dash: dashed, width: 1 },
      ],
    }, [d.map(p => L.t(p.end)), d.map(p => p.confidence_mean), d.map(p => p.confidence_p10),
      d.map(p => p.reference_confidence_mean), d.map(p => p.reference_confidence_p10)], [1, 2]);
  }

  function drawAccuracy() {
    const perf = series.performance;
    const est = series.drift.filter(p => p.estimated_accuracy !== undefined);
    const j = uPlot.join([
      [perf.map(p => L.t(p.end)), perf.map(p => p.accuracy ?? null), perf.map(p => p.labelled)],
      [est.map(p => L.t(p.end)), est.map(p => p.estimated_accuracy), est.map(p => p.reference_estimated_accuracy ?? null)],
    ]);
    const r = range();
    L.chart($("c-accuracy"), "accuracy", {
      sync: "model", xmin: r[0], xmax: r[1],
      series: [
        { label: "realised", stroke: "#1a7f37", width: 2, spanGaps: true },
        { label: "labels", stroke: "#8c959f", width: 1, scale: "n", spanGaps: true },
        { label: "estimated (CBPE)", stroke: "#bf8700", width: 2, spanGaps: true },
        { label: "reference estimate", stroke: "#bf8700", dash: dashed, width: 1, spanGaps: true },
      ],
      axes: [{}, { scale: "y" }, { scale: "n", side: 1, grid: { show: false } }],
      extra: { scales: { x: { time: true, min: r[0], max: r[1] }, y: { range: [0, 1] }, n: { range: (u, min, max) => [0, Math.max(1, max) * 3] } } },
    }, j, [1, 3]);
  }

  function drawCanary() {
    const c = series.canary;
    const xs = c.map(p => L.t(p.end));
    const mark = v => c.map(p => p.verdict === v ? 1.05 : null);
    const marker = color => ({ stroke: color, paths: noPath, points: { show: true, size: 8, fill: color } });
    const r = range();
    L.chart($("c-canary"), "canary", {
      sync: "model", xmin: r[0], xmax: r[1],
      series: [
        { label: "agreement", stroke: "#0969da", width: 2, spanGaps: true },
        { label: "quality difference", stroke: "#8250df", width: 1.5, spanGaps: true },
        { label: "latency ratio (p95)", stroke: "#bf8700", width: 1.5, scale: "ratio", spanGaps: true },
        Object.assign({ label: "promote" }, marker("#1a7f37")),
        Object.assign({ label: "hold" }, marker("#9a6700")),
        Object.assign({ label: "rollback" }, marker("#cf222e")),
      ],
      axes: [{}, { scale: "y" }, { scale: "ratio", side: 1, grid: { show: false } }],
      extra: { scales: { x: { time: true, min: r[0], max: r[1] }, y: { range: [-0.2, 1.1] }, ratio: { range: (u, min, max) => [0, Math.max(2, max || 0)] } } },
    }, [xs, c.map(p => p.agreement ?? null), c.map(p => p.quality_difference ?? null), c.map(p => p.latency_ratio ?? null),
      mark("promote"), mark("hold"), mark("rollback")], [1, 2, 3, 4, 5, 6]);
  }

  function drawAlerts() {
    const a = series.alerts;
    const rules = [...new Set(a.map(p => p.rule))].sort();
    const xs = [...new Set(a.map(p => L.t(p.at)))].sort((p, q) => p - q);
    const idx = new Map(xs.map((x, i) => [x, i]));
    const firing = xs.map(() => null), resolved = xs.map(() => null);
    for (const p of a) (p.status === "firing" ? firing : resolved)[idx.get(L.t(p.at))] = rules.indexOf(p.rule);
    const r = range();
    L.chart($("c-alerts"), "alerts", {
      sync: "model", xmin: r[0], xmax: r[1], height: Math.max(120, 40 + 24 * rules.length),
      series: [
        { label: "firing", stroke: "#cf222e", paths: noPath, points: { show: true, size: 9, fill: "#cf222e" } },
        { label: "resolved", stroke: "#1a7f37", paths: noPath, points: { show: true, size: 9, fill: "#1a7f37" } },
      ],
      axes: [{}, { size: 180, splits: () => rules.map((_, i) => i), values: (u, vals) => vals.map(v => rules[v] || "") }],
      extra: { scales: { x: { time: true, min: r[0], max: r[1] }, y: { range: [-0.5, Math.max(0.5, rules.length - 0.5)] } } },
    }, [xs, firing, resolved], [1, 2]);
  }

  // drawHeatmap paints features × windows on a canvas: white under the
  // threshold, red past it.
  function drawHeatmap() {
    const box = $("c-feature-heatmap");
    const d = series.drift;
    const feats = series.features.map((name, i) => ({ name, i, max: Math.max(-1, ...d.map(p => p.severity[i] ?? -1)) }))
      .sort((a, b) => b.max - a.max || a.name.localeCompare(b.name)).slice(0, 40);
    const label = 140, rowH = 16;
    const width = Math.max(300, box.clientWidth || 600);
    const cellW = Math.max(1, (width - label) / Math.max(1, d.length));
    const canvas = L.el("canvas");
    const ratio = window.devicePixelRatio || 1;
    const h = rowH * feats.length + 4;
    canvas.width = width * ratio; canvas.height = h * ratio;
    canvas.style.width = width + "px"; canvas.style.height = h + "px";
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    let cells = 0;
    feats.forEach((f, row) => {
      g.fillStyle = "#1f2328";
      g.fillText(f.name.length > 20 ? f.name.slice(0, 19) + "…" : f.name, 2, row * rowH + rowH / 2);
      d.forEach((p, col) => {
        const s = p.severity[f.i];
        if (s === undefined || s < 0) return;
        cells++;
        const t = Math.min(1, s / 2);
        g.fillStyle = s >= 1 ? `rgb(${207},${Math.round(34 + 120 * (1 - t))},${Math.round(46 + 100 * (1 - t))})`
          : `rgb(${Math.round(255 - 40 * t)},${Math.round(255 - 30 * t)},${Math.round(255 - 10 * t)})`;
        g.fillRect(label + col * cellW, row * rowH + 1, Math.max(1, cellW - (cellW > 3 ? 1 : 0)), rowH - 2);
      });
    });
    const tip = L.el("div", { class: "tip" });
    tip.hidden = true;
    const at = e => {
      const rect = canvas.getBoundingClientRect();
      const col = Math.floor((e.clientX - rect.left - label) / cellW), row = Math.floor((e.clientY - rect.top) / rowH);
      if (col < 0 || col >= d.length || row < 0 || row >= feats.length) return null;
      return { p: d[col], f: feats[row], x: e.clientX - rect.left, y: e.clientY - rect.top };
    };
    canvas.addEventListener("mousemove", e => {
      const c = at(e);
      if (!c) { tip.hidden = true; return; }
      tip.hidden = false;
      tip.textContent = c.f.name + " · " + new Date(c.p.end).toISOString().slice(11, 19) + " · severity " + L.fmt(c.p.severity[c.f.i], 2);
      tip.style.left = (c.x + 12) + "px"; tip.style.top = (c.y + 8) + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    canvas.addEventListener("click", e => {
      const c = at(e);
      if (!c) return;
      pickedFeature = c.f.name;
      chooseWindow(c.p.seq);
      drawDistribution();
    });
    box.replaceChildren(canvas, tip);
    box.dataset.chart = "feature-heatmap";
    box.dataset.points = String(cells);
  }

  function drawDistribution() {
    const pick = $("feature-pick");
    const names = series.features;
    if (!pickedFeature || !names.includes(pickedFeature)) pickedFeature = names[0] || null;
    pick.replaceChildren(...names.map(n => L.el("option", { value: n, text: n })));
    if (pickedFeature) pick.value = pickedFeature;
    const i = names.indexOf(pickedFeature);
    const d = series.drift;
    const r = range();
    L.chart($("c-distribution"), "feature-drift", {
      sync: "model", xmin: r[0], xmax: r[1],
      series: [
        { label: (pickedFeature || "feature") + " severity", stroke: "#cf222e", width: 2, spanGaps: true },
        { label: "threshold", stroke: "#6e7781", dash: dashed, width: 1 },
      ],
    }, [d.map(p => L.t(p.end)), d.map(p => i >= 0 && p.severity[i] >= 0 ? p.severity[i] : null), d.map(() => 1)], [1]);
    drawHistogram();
  }

  // num writes a bin edge short: three significant digits.
  const num = v => Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(3));

  // binLabels names a histogram's bins: the open outer bins and [a, b)
  // between edges, or the categories.
  function binLabels(h) {
    if (h.categories) return h.categories.map((c, i) => h.other && i === h.categories.length - 1 ? "(other)" : c);
    const e = h.edges || [];
    if (!e.length) return ["all"];
    return h.reference.map((_, i) => i === 0 ? "< " + num(e[0]) : i === e.length ? "≥ " + num(e[e.length - 1]) : num(e[i - 1]) + "–" + num(e[i]));
  }

  // drawHistogram draws the picked feature's bins in the chosen window's
  // report: reference and window shares side by side.
  function drawHistogram() {
    const box = $("c-feature-distribution");
    const f = chosenReport && pickedFeature && chosenReport.features ? chosenReport.features[pickedFeature] : null;
    const h = f && f.histogram;
    box.dataset.chart = "feature-distribution";
    if (!h || !h.reference || !h.reference.length) {
      box.dataset.points = "0";
      box.replaceChildren();
      $("dist-note").textContent = chosenReport ? "This window's report has no histogram for " + (pickedFeature || "the feature") + "." : "";
      return;
    }
    const labels = binLabels(h);
    const n = labels.length;
    const width = Math.max(300, box.clientWidth || 560), height = 230;
    const left = 44, right = 8, top = 22, bottom = 64;
    const canvas = L.el("canvas");
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio; canvas.height = height * ratio;
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.font = "11px system-ui, sans-serif";
    const ymax = Math.max(0.01, ...h.reference, ...h.current) * 1.1;
    const plotH = height - top - bottom, plotW = width - left - right;
    const y = v => top + plotH * (1 - v / ymax);
    g.strokeStyle = "#d0d7de"; g.fillStyle = "#6e7781"; g.textAlign = "right"; g.textBaseline = "middle";
    for (let k = 0; k <= 4; k++) {
      const v = ymax * k / 4;
      g.beginPath(); g.moveTo(left, y(v)); g.lineTo(width - right, y(v)); g.stroke();
      g.fillText(L.fmt(100 * v, 0) + "%", left - 4, y(v));
    }
    const slot = plotW / n, barW = Math.max(1, slot * 0.38);
    let bars = 0;
    const colors = ["#8c959f", "#0969da"];
    [h.reference, h.current].forEach((vals, side) => {
      g.fillStyle = colors[side];
      vals.forEach((v, i) => {
        if (v === null || v === undefined) return;
        bars++;
        const x = left + i * slot + slot * 0.1 + side * barW;
        g.fillRect(x, y(v), barW, Math.max(0, y(0) - y(v)));
      });
    });
    g.fillStyle = "#1f2328"; g.textAlign = "right"; g.textBaseline = "middle";
    labels.forEach((lab, i) => {
      g.save();
      g.translate(left + (i + 0.5) * slot, height - bottom + 8);
      g.rotate(-Math.PI / 4);
      g.fillText(lab.length > 14 ? lab.slice(0, 13) + "…" : lab, 0, 0);
      g.restore();
    });
    g.textAlign = "left";
    [["reference", 0], ["window", 1]].forEach(([name, side], k) => {
      g.fillStyle = colors[side];
      g.fillRect(left + 8 + k * 90, 6, 10, 10);
      g.fillStyle = "#1f2328";
      g.fillText(name, left + 22 + k * 90, 11);
    });
    const tip = L.el("div", { class: "tip" });
    tip.hidden = true;
    canvas.addEventListener("mousemove", e => {
      const rect = canvas.getBoundingClientRect();
      const i = Math.floor((e.clientX - rect.left - left) / slot);
      if (i < 0 || i >= n) { tip.hidden = true; return; }
      tip.hidden = false;
      tip.textContent = labels[i] + " · reference " + L.pct(h.reference[i]) + " · window " + L.pct(h.current[i]);
      tip.style.left = (e.clientX - rect.left + 12) + "px"; tip.style.top = (e.clientY - rect.top + 8) + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    box.replaceChildren(canvas, tip);
    box.dataset.points = String(bars);
    $("dist-note").textContent = (h.edges ? "Bins: the reference's deciles, as PSI bins them" :
      h.other ? "The top " + (n - 1) + " categories, the rest as (other)" : "Every category") +
      ". PSI " + L.fmt(f.psi) + ", Jensen-Shannon " + L.fmt(f.jensen_shannon) + ".";
  }

  // stepWindow chooses the drift window before (-1) or after (+1) the
  // chosen one.
  function stepWindow(dir) {
    const d = series ? series.drift : [];
    if (!d.length) return;
    let i = d.findIndex(p => p.seq === chosenSeq);
    i = i < 0 ? d.length - 1 : Math.min(d.length - 1, Math.max(0, i + dir));
    chooseWindow(d[i].seq).catch(e => console.warn(e));
  }
  $("win-prev").addEventListener("click", () => stepWindow(-1));
  $("win-next").addEventListener("click", () => stepWindow(1));
  $("win-latest").addEventListener("click", () => stepWindow(Infinity));

  async function chooseWindow(seq) {
    chosenSeq = seq;
    const rep = await L.get(api + "/reports/" + seq + "?kind=drift");
    if (seq !== chosenSeq) return; // a later choice won
    chosenReport = rep;
    $("dist-window").textContent = "reference (" + rep.reference.count + " rows) against the window " +
      rep.window.start.slice(0, 16).replace("T", " ") + " – " + rep.window.end.slice(11, 16) + " UTC (" + rep.window.count + " events)";
    drawHistogram();
    const q = (rep.data_quality && rep.data_quality.features) || {};
    $("window-label").textContent = "window " + rep.window.start.slice(0, 19).replace("T", " ") + " – " + rep.window.end.slice(11, 19) +
      " UTC, " + rep.window.count + " events" + (rep.version ? ", version " + rep.version : "") + " (stream sequence " + seq + ")";
    tableRows = Object.entries(rep.features || {}).map(([name, f]) => {
      const dq = q[name] || {};
      const quality = [];
      if (dq.null_share) quality.push("nulls " + L.pct(dq.null_share));
      if (dq.unseen_categories) quality.push(dq.unseen_categories + " unseen");
      if (dq.out_of_range) quality.push(dq.out_of_range + " out of range");
      if (dq.type_mismatches) quality.push(dq.type_mismatches + " of another type");
      if (dq.skipped) quality.push("skipped: " + dq.skipped);
      const p = f.ks ? f.ks.p_value : (f.chi2 ? f.chi2.p_value : null);
      const sev = f.threshold > 0 ? (f.method === "ks" || f.method === "chi2" ? Math.log(Math.max(f.score, 1e-300)) / Math.log(f.threshold) : f.score / f.threshold) : null;
      return { name, method: f.method, score: f.score, threshold: f.threshold, p, severity: sev, psi: f.psi, js: f.jensen_shannon, quality: quality.join(", "), drifted: f.drifted };
    });
    drawTable();
  }

  function drawTable() {
    const k = sort.key;
    tableRows.sort((a, b) => {
      const x = a[k], y = b[k];
      const c = (typeof x === "number" || typeof y === "number") ? (x ?? -Infinity) - (y ?? -Infinity) : String(x ?? "").localeCompare(String(y ?? ""));
      return sort.asc ? c : -c;
    });
    const body = $("features").tBodies[0];
    body.replaceChildren(...tableRows.map(r => L.el("tr", { class: r.drifted ? "drifted" : "" },
      L.el("td", { text: r.name }), L.el("td", { text: r.method }), L.el("td", { class: "num", text: L.fmt(r.score, 4) }),
      L.el("td", { class: "num", text: L.fmt(r.threshold, 4) }), L.el("td", { class: "num", text: r.p === null ? "–" : r.p.toExponential(2) }),
      L.el("td", { class: "num", text: L.fmt(r.severity, 2) }), L.el("td", { class: "num", text: L.fmt(r.psi) }),
      L.el("td", { class: "num", text: L.fmt(r.js) }), L.el("td", { text: r.quality || "ok" }))));
    $("features").querySelectorAll("th").forEach(th => {
      th.classList.toggle("sorted", th.dataset.sort === k);
      th.classList.toggle("asc", th.dataset.sort === k && sort.asc);
    });
  }

  $("features").tHead.addEventListener("click", e => {
    const key = e.target.dataset && e.target.dataset.sort;
    if (!key) return;
    sort = { key, asc: sort.key === key ? !sort.asc : key === "name" || key === "method" };
    drawTable();
  });

  $("feature-pick").addEventListener("change", e => { pickedFeature = e.target.value; drawDistribution(); });

  // runCell links a training run when it is a web address; wandb:// and
  // mlflow:// URIs stay text (their web address depends on the tracking
  // server and the run's id, which the URI may not hold).
  function runCell(run) {
    if (!run) return L.el("td", { class: "muted", text: "not recorded" });
    if (/^https?:\/\//i.test(run)) return L.el("td", { class: "run" }, L.el("a", { href: run, rel: "noopener noreferrer", target: "_blank", text: run }));
    return L.el("td", { class: "run", text: run });
  }

  function drawVersions(list) {
    const fmt = iso => iso ? iso.slice(0, 16).replace("T", " ") : "–";
    $("versions").tBodies[0].replaceChildren(...(list || []).map(v => L.el("tr", { "data-version": v.version },
      L.el("td", { text: v.version }), L.el("td", { text: (v.roles || []).join(", ") || "–" }),
      L.el("td", { text: v.started ? fmt(v.started) : "no report yet" }), L.el("td", { text: fmt(v.last_seen) }), runCell(v.run))));
  }

  async function loadAlerts() {
    const [firing, models] = await Promise.all([L.get("/api/v1/alerts"), L.get("/api/v1/models")]);
    const mine = firing.filter(a => a.model === model);
    $("firing").replaceChildren(...(mine.length ? mine.map(L.alertItem) : [L.el("li", { class: "muted", text: "none" })]));
    const m = models.find(x => x.name === model);
    drawVersions(m ? m.versions : []);
    const st = $("state");
    st.textContent = m ? m.state + (m.canary_verdict ? " · canary " + m.canary_verdict : "") : "no reports";
    st.className = "state " + (m ? m.state : "");
  }

  async function loadSilences() {
    const list = await L.get("/api/v1/silences");
    const now = Date.now();
    const mine = list.filter(s => (s.model === model || s.model === "*") && Date.parse(s.ends_at) > now);
    $("silences").tBodies[0].replaceChildren(...mine.map(s => {
      const labels = Object.entries(s.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
      const expire = L.el("button", { class: "small", type: "button", text: "expire", "data-id": s.id });
      expire.addEventListener("click", async () => {
        try { await L.post("/api/v1/silences/" + encodeURIComponent(s.id) + "/expire"); } catch (e) { $("silence-msg").textContent = String(e.message || e); }
        refreshAlerts();
      });
      return L.el("tr", { "data-silence": s.id }, L.el("td", { text: s.id }),
        L.el("td", { text: "model=" + s.model + (s.rule ? " rule=" + s.rule : "") + (labels ? " " + labels : "") }),
        L.el("td", { text: s.ends_at.slice(0, 19).replace("T", " ") }), L.el("td", { text: s.comment }), L.el("td", {}, expire));
    }));
  }

  $("silence-form").addEventListener("submit", async e => {
    e.preventDefault();
    const f = new FormData(e.target);
    const labels = {};
    for (const part of String(f.get("labels") || "").split(",")) {
      const [k, ...v] = part.trim().split("=");
      if (k) labels[k] = v.join("=");
    }
    try {
      const s = await L.post("/api/v1/silences", { model, rule: f.get("rule") || "", labels, duration: f.get("duration") || "2h", comment: f.get("comment") || "" });
      $("silence-msg").textContent = "added " + s.id;
      e.target.reset();
    } catch (err) {
      $("silence-msg").textContent = "not added: " + (err.message || err);
    }
    refreshAlerts();
  });

  function refreshAlerts() {
    loadAlerts().catch(e => console.warn(e));
    loadSilences().catch(e => console.warn(e));
  }

  async function load() {
    series = await L.get(api + "/series?since=" + L.range());
    if (series.last_report) L.setLast(series.last_report);
    drawDriftShare();
    drawHeatmap();
    drawConfidence();
    drawAccuracy();
    drawCanary();
    drawAlerts();
    drawDistribution();
    const d = series.drift;
    const latest = d.length ? d[d.length - 1].seq : null;
    // Follow the newest window unless the user chose one.
    if (latest !== null && (chosenSeq === null || !d.some(p => p.seq === chosenSeq) || chosenSeq === lastLatest)) await chooseWindow(latest);
    lastLatest = latest;
  }
  let lastLatest = null;

  const reload = L.debounce(() => load().catch(e => console.warn(e)), 1000);
  const reloadAlerts = L.debounce(refreshAlerts, 500);
  // Versions change seldom: their last-seen dates follow the reports
  // every few seconds.
  const reloadVersions = L.debounce(() => L.get("/api/v1/models").then(ms => {
    const m = ms.find(x => x.name === model);
    drawVersions(m ? m.versions : []);
  }).catch(e => console.warn(e)), 5000);
  L.setupRanges(reload);
  L.live(u => {
    if (u.model !== model && u.model !== "*") return;
    if (u.kind === "alerts" || u.kind === "silence") reloadAlerts();
    if (u.kind !== "silence") reload();
    if (u.kind === "drift" || u.kind === "canary") reloadVersions();
  });
  load().catch(e => console.warn(e));
  refreshAlerts();
})();
