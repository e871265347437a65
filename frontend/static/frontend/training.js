/* Training run page: SVG line charts of the logged metrics, refreshed by polling the run's
 * JSON API every few seconds while the run is queued or running. */
"use strict";
(() => {
  const box = document.getElementById("charts");
  const NS = "http://www.w3.org/2000/svg";
  const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));

  function lineChart(target, points, label) {
    target.innerHTML = "";
    if (!points || !points.length) {
      const p = document.createElement("p");
      p.className = "muted small";
      p.textContent = "Not logged by this kind of run yet.";
      target.appendChild(p);
      return;
    }
    const W = 420, H = 200, L = 48, R = 12, T = 12, B = 28;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (x0 === x1) x1 = x0 + 1;
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
      "aria-label": `${label}: ${points.length} points, last ${fmt(ys[ys.length - 1])} at step ${xs[xs.length - 1]}` });
    for (let i = 0; i <= 4; i++) {
      const v = y0 + ((y1 - y0) * i) / 4, y = sy(v);
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e6ebef" }));
      svg.appendChild(el("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, fmt(v)));
    }
    svg.appendChild(el("text", { x: L, y: H - 8 }, `step ${x0}`));
    svg.appendChild(el("text", { x: W - R, y: H - 8, "text-anchor": "end" }, `step ${x1}`));
    const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    svg.appendChild(el("path", { d, fill: "none", stroke: "#0b6483", "stroke-width": 2, "stroke-linejoin": "round" }));
    const last = points[points.length - 1];
    svg.appendChild(el("circle", { cx: sx(last[0]), cy: sy(last[1]), r: 3.5, fill: "#0b6483" }));
    target.appendChild(svg);
  }

  function draw(charts) {
    for (const target of box.querySelectorAll("[data-chart]")) {
      const key = target.dataset.chart;
      lineChart(target, charts[key], target.closest("section").querySelector("h2").textContent);
    }
  }

  function update(run) {
    const status = document.getElementById("run-status");
    status.textContent = run.status.charAt(0).toUpperCase() + run.status.slice(1);
    status.className = "badge badge-" + run.status;
    const pct = Math.round((run.progress || 0) * 100);
    document.getElementById("run-progress").textContent = pct + "%";
    document.getElementById("run-bar").querySelector("span").style.width = pct + "%";
    document.getElementById("run-bar").setAttribute("aria-valuenow", String(pct));
    document.getElementById("run-steps").textContent = `step ${run.current_step} of ${run.total_steps}`;
    document.getElementById("run-host").textContent = run.host || "—";
    if (run.log_tail) document.getElementById("run-log").textContent = run.log_tail;
    const error = document.getElementById("run-error");
    error.hidden = !run.error;
    error.textContent = run.error || "";
    if (run.metrics && run.metrics.charts) draw(run.metrics.charts);
    heldout(run.final_metrics || {});
  }

  // Held-out accuracy with its 95% bootstrap interval and n, next to the physicians' ceiling.
  function heldout(m) {
    if (typeof m.heldout_accuracy !== "number") return;
    const pct = (x) => Math.round(100 * x);
    let sub = `95% CI ${pct(m.heldout_accuracy_ci_low)}–${pct(m.heldout_accuracy_ci_high)}%, n = ${m.heldout_n_pairs} pairs`;
    if (typeof m.heldout_physician_agreement_ceiling === "number") sub += `; physicians agree ${pct(m.heldout_physician_agreement_ceiling)}%`;
    document.getElementById("run-heldout-value").textContent = pct(m.heldout_accuracy) + "%";
    document.getElementById("run-heldout-sub").textContent = sub;
    document.getElementById("run-heldout").hidden = false;
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        const run = await response.json();
        update(run);
        if (FINISHED.has(run.status)) {
          const cancel = document.getElementById("cancel-form");
          if (cancel) cancel.remove();
          return;
        }
      }
    } catch (err) { /* offline for a moment: try again on the next tick */ }
    setTimeout(poll, 3000);
  }

  draw(JSON.parse(document.getElementById("chart-data").textContent || "{}"));
  if (box.dataset.finished !== "1") setTimeout(poll, 2000);
})();
