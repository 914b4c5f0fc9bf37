// chaoslab console — a small SVG time-series renderer (no dependencies).
// A chart shows the last `windowMs` of one or more series on a shared time
// axis, with shaded spans (faults, alerts) drawn behind the lines.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmtTime(ms) {
  const d = new Date(ms);
  return d.toTimeString().slice(0, 8);
}

function fmtValue(v, unit) {
  if (v == null || Number.isNaN(v)) return "–";
  const abs = Math.abs(v);
  const s = abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : v.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

export class TimeChart {
  // opts: {title, unit, windowMs, yMax (optional fixed), step (bool)}
  constructor(container, opts) {
    this.opts = Object.assign({ windowMs: 15 * 60 * 1000, unit: "" }, opts);
    this.wrap = document.createElement("figure");
    this.wrap.className = "chart";
    const cap = document.createElement("figcaption");
    this.titleEl = document.createElement("span");
    this.titleEl.textContent = this.opts.title;
    this.legend = document.createElement("span");
    this.legend.className = "legend";
    cap.append(this.titleEl, this.legend);
    this.wrap.appendChild(cap);
    this.svg = el("svg", { viewBox: "0 0 600 180", preserveAspectRatio: "none", role: "img", "aria-label": this.opts.title });
    this.wrap.appendChild(this.svg);
    container.appendChild(this.wrap);
    this.series = new Map(); // name -> {color, points: [[t, v]]}
    this.spans = [];
  }

  setSeries(name, color, points) {
    this.series.set(name, { color, points });
  }

  retainSeries(names) {
    for (const k of [...this.series.keys()]) if (!names.has(k)) this.series.delete(k);
  }

  setSpans(spans) {
    this.spans = spans;
  }

  // `since`: the oldest data point; a young lab's first minutes fill the
  // chart instead of a sliver at the right edge of a 15-minute axis.
  render(now, since) {
    const W = 600, H = 180, L = 44, R = 6, T = 8, B = 20;
    const span = Math.min(this.opts.windowMs, Math.max(60 * 1000, now - (since ?? now - this.opts.windowMs)));
    const t1 = now, t0 = now - span;
    const svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    let max = 0;
    for (const s of this.series.values())
      for (const [t, v] of s.points) if (t >= t0 && v != null && v > max) max = v;
    const yMax = this.opts.yMax != null ? Math.max(this.opts.yMax, niceMax(max)) : niceMax(max);
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / yMax) * (H - T - B);

    // Spans behind everything, labelled.
    let shown = 0;
    for (const sp of this.spans) {
      const a = Math.max(sp.start, t0), b = Math.min(sp.end ?? t1, t1);
      if (b <= a) continue;
      const row = shown++ % 3; // stagger labels of overlapping spans
      const r = el("rect", { x: x(a), y: T, width: Math.max(1, x(b) - x(a)), height: H - T - B, class: `span span-${sp.kind}` }, svg);
      el("title", {}, r).textContent = sp.label;
      const label = el("text", { x: x(a) + 2, y: T + 10 + 11 * row, class: `span-label span-label-${sp.kind}` }, svg);
      label.textContent = sp.label.length > 28 ? sp.label.slice(0, 27) + "…" : sp.label;
    }
    // Grid and axes.
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }, svg);
      el("text", { x: L - 4, y: y(v) + 3, class: "axis", "text-anchor": "end" }, svg).textContent = fmtValue(v);
    }
    for (let i = 0; i <= 3; i++) {
      const t = t0 + ((t1 - t0) * i) / 3;
      el("text", { x: x(t), y: H - 5, class: "axis", "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" }, svg).textContent = fmtTime(t);
    }
    // Lines.
    const legend = [];
    for (const [name, s] of this.series) {
      let d = "";
      let pen = false;
      let last = null;
      for (const [t, v] of s.points) {
        if (t < t0 || v == null) { pen = false; continue; }
        if (this.opts.step && pen && last != null) d += `L${x(t).toFixed(1)},${y(last).toFixed(1)}`;
        d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
        last = v;
      }
      if (d) el("path", { d, class: "line", stroke: s.color }, svg);
      const lastPoint = s.points.length ? s.points[s.points.length - 1][1] : null;
      legend.push(`<span class="key" style="--c:${s.color}">${escapeHtml(name)} ${escapeHtml(fmtValue(lastPoint, this.opts.unit))}</span>`);
    }
    this.legend.innerHTML = legend.join(" ");
  }
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
