// chaoslab console — one page over the lab's control API. The token comes
// from the lab (the URL `chaoslab up` prints carries it in the fragment,
// which browsers never send to a server); it is kept in sessionStorage.
// Metrics and events are pushed by the lab as JSON-lines streams; status,
// replicas, revisions and faults are refreshed every 2 s.
"use strict";

import { TimeChart, PALETTE, escapeHtml } from "./charts.js";

const WINDOW_MS = 15 * 60 * 1000;
const MAX_EVENTS = 500;

// ---- token and API ---------------------------------------------------------

const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) {
  sessionStorage.setItem("chaoslab-token", hash.get("token"));
  history.replaceState(null, "", location.pathname);
}
const token = () => sessionStorage.getItem("chaoslab-token") || "";

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, opts = {}) {
  const res = await fetch(path, {
    method: opts.method || "GET",
    headers: Object.assign({ authorization: `Bearer ${token()}` }, opts.body ? { "content-type": "application/json" } : {}),
    body: opts.body ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!res.ok) throw new ApiError(res.status, (body && body.detail) || res.statusText);
  return body;
}

// Reads a JSON-lines stream, calling onItem per line, until it ends.
async function stream(path, onItem, signal) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token()}` }, signal });
  if (!res.ok) throw new ApiError(res.status, res.statusText);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) {
        try { onItem(JSON.parse(line)); } catch (e) { console.warn("bad line", line, e); }
      }
    }
  }
}

// ---- state ----------------------------------------------------------------

const state = {
  points: [],        // metrics points, oldest first, last 15 min
  events: [],        // newest first
  lastSeq: 0,
  status: null,
  faults: [],
  connected: false,
  eventFilter: "",
};

function addPoint(p) {
  const last = state.points[state.points.length - 1];
  if (last && p.unix_ms <= last.unix_ms) return;
  state.points.push(p);
  const cutoff = p.unix_ms - WINDOW_MS;
  while (state.points.length && state.points[0].unix_ms < cutoff) state.points.shift();
}

function addEvent(e) {
  if (e.lagged) return;
  if (e.seq <= state.lastSeq) return;
  state.lastSeq = e.seq;
  state.events.unshift(e);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  if (/^Fault|^Alert/.test(e.reason)) refresh();
  renderEvents();
}

// Shaded spans on every chart: faults and alerts, from their events.
function spans() {
  const open = new Map();
  const out = [];
  for (const e of [...state.events].reverse()) {
    const t = Date.parse(e.time);
    const d = e.data || {};
    if (e.reason === "FaultInjected" && d.id) {
      open.set(`f:${d.id}`, { kind: "fault", start: t, end: null, label: `fault ${d.kind || ""} ${d.target || ""}`.trim() });
    } else if ((e.reason === "FaultCleared" || e.reason === "FaultExpired") && d.id && open.has(`f:${d.id}`)) {
      const s = open.get(`f:${d.id}`); s.end = t; out.push(s); open.delete(`f:${d.id}`);
    } else if (e.reason === "AlertFiring" && d.rule) {
      open.set(`a:${d.rule}`, { kind: "alert", start: t, end: null, label: `alert ${d.rule}` });
    } else if (e.reason === "AlertResolved" && d.rule && open.has(`a:${d.rule}`)) {
      const s = open.get(`a:${d.rule}`); s.end = t; out.push(s); open.delete(`a:${d.rule}`);
    }
  }
  return out.concat([...open.values()]);
}

// ---- charts -----------------------------------------------------------------

const chartsEl = document.getElementById("charts");
const charts = {
  rps: new TimeChart(chartsEl, { title: "Requests/s at the ingress", unit: "/s" }),
  errors: new TimeChart(chartsEl, { title: "Error rate (5xx)", unit: "%", yMax: 100 }),
  latency: new TimeChart(chartsEl, { title: "Latency", unit: "ms" }),
  replicas: new TimeChart(chartsEl, { title: "Replicas", step: true }),
  cpu: new TimeChart(chartsEl, { title: "CPU per replica", unit: "%" }),
  rss: new TimeChart(chartsEl, { title: "Memory (RSS) per replica", unit: "MB" }),
  redis: new TimeChart(chartsEl, { title: "Lab's own Redis PING (gaps: down)", unit: "ms" }),
  load: new TimeChart(chartsEl, { title: "Internal chaos load (0 none … 3 high)", yMax: 3, step: true }),
};

function series(get) {
  return state.points.map((p) => [p.unix_ms, get(p)]);
}

function perReplica(chart, field) {
  const ids = new Map();
  for (const p of state.points) for (const r of p.per_replica || []) ids.set(r.id, true);
  const names = new Set();
  [...ids.keys()].forEach((id, i) => {
    names.add(id);
    chart.setSeries(id, PALETTE[i % PALETTE.length], state.points.map((p) => {
      const r = (p.per_replica || []).find((x) => x.id === id);
      return [p.unix_ms, r ? r[field] : null];
    }));
  });
  chart.retainSeries(names);
}

function renderCharts() {
  const now = state.points.length ? state.points[state.points.length - 1].unix_ms : Date.now();
  charts.rps.setSeries("requests", PALETTE[0], series((p) => p.requests));
  charts.rps.setSeries("5xx", PALETTE[1], series((p) => p.errors_5xx));
  charts.errors.setSeries("5xx %", PALETTE[1], series((p) => (p.requests ? (100 * p.errors_5xx) / p.requests : 0)));
  charts.latency.setSeries("p50", PALETTE[2], series((p) => p.p50_ms));
  charts.latency.setSeries("p95", PALETTE[3], series((p) => p.p95_ms));
  charts.latency.setSeries("p99", PALETTE[1], series((p) => p.p99_ms));
  charts.replicas.setSeries("ready", PALETTE[2], series((p) => p.ready));
  charts.replicas.setSeries("not ready", PALETTE[1], series((p) => Math.max(0, (p.replicas || 0) - (p.ready || 0) - (p.restarting || 0))));
  charts.replicas.setSeries("restarting", PALETTE[3], series((p) => p.restarting || 0));
  charts.replicas.setSeries("desired", PALETTE[4], series((p) => p.desired));
  perReplica(charts.cpu, "cpu_percent");
  perReplica(charts.rss, "rss_mb");
  charts.redis.setSeries("PING", PALETTE[5], series((p) => (p.redis_connected === false ? null : p.redis_ping_ms)));
  charts.load.setSeries("max level", PALETTE[3], series((p) => Math.max(0, ...(p.per_replica || []).map((r) => r.load_level || 0))));
  const sp = spans();
  const since = state.points.length ? state.points[0].unix_ms : now;
  for (const c of Object.values(charts)) {
    c.setSpans(sp);
    c.render(now, since);
  }
}

// ---- panels -----------------------------------------------------------------

function table(el, headers, rows) {
  el.innerHTML = `<table><thead><tr>${headers.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join("")}</tr></thead>
    <tbody>${rows.length ? rows.join("") : `<tr><td colspan="${headers.length}" class="empty">none</td></tr>`}</tbody></table>`;
}

function renderPanels() {
  const s = state.status;
  if (!s) return;
  charts.replicas.titleEl.textContent = `Replicas of ${s.active_revision || "the active revision"}`;
  const revisions = s.revisions || [];
  document.getElementById("summary").textContent =
    `active revision ${s.active_revision || "–"} · ${(s.replicas || []).filter((r) => r.ready).length}/${(s.replicas || []).length} replicas ready · ingress ${s.lab ? s.lab.ingress_url : ""}`;
  table(document.getElementById("replicas"), ["replica", "revision", "state", "ready", "restarts", "last exit", "CPU %", "RSS MB"],
    (s.replicas || []).map((r) => `<tr class="${r.ready ? "" : "bad"}"><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.revision)}</td>
      <td>${escapeHtml(r.phase)}</td><td>${r.ready ? "yes" : "no"}</td><td>${r.restarts}</td>
      <td>${escapeHtml(r.last_exit ? r.last_exit.reason || JSON.stringify(r.last_exit) : "")}</td>
      <td>${Number(r.cpu_percent || 0).toFixed(0)}</td><td>${Number(r.rss_mb || 0).toFixed(0)}</td></tr>`));
  table(document.getElementById("revisions"), ["revision", "created", "state", "active", "traffic", "replicas", "reason"],
    revisions.slice().reverse().map((r) => `<tr class="${r.state === "Failed" ? "bad" : ""}"><td>${escapeHtml(r.name)}</td>
      <td>${escapeHtml((r.created || "").slice(11, 19))}</td><td>${escapeHtml(r.state)}</td><td>${r.active ? "yes" : ""}</td>
      <td>${r.traffic}%</td><td>${r.ready_replicas}/${r.replicas}</td><td>${escapeHtml(r.reason || "")}</td></tr>`));
  const faultsEl = document.getElementById("faults");
  table(faultsEl, ["id", "kind", "target", "started", "time left", ""],
    state.faults.map((f) => `<tr><td>${escapeHtml(f.id)}</td><td>${escapeHtml(f.kind)}</td><td>${escapeHtml(f.target || "")}</td>
      <td>${escapeHtml((f.started || "").slice(11, 19))}</td>
      <td>${f.remaining_seconds == null ? "until cleared" : `${f.remaining_seconds} s`}</td>
      <td><button type="button" data-clear="${escapeHtml(f.id)}">clear</button></td></tr>`));
  document.getElementById("clear-all").disabled = state.faults.length === 0;
}

function renderEvents() {
  const filter = state.eventFilter;
  const rows = state.events
    .filter((e) => !filter || e.reason === filter || (filter === "Fault" && e.reason.startsWith("Fault")) || (filter === "Alert" && e.reason.startsWith("Alert")))
    .slice(0, 200)
    .map((e) => `<tr class="${e.level === "Warning" ? "warn" : ""}"><td>${escapeHtml(e.time.slice(11, 19))}</td>
      <td>${escapeHtml(e.reason)}</td><td>${escapeHtml(e.subject)}</td><td>${escapeHtml(e.message)}</td></tr>`);
  table(document.getElementById("events"), ["time", "reason", "subject", "message"], rows);
  const select = document.getElementById("event-filter");
  const reasons = new Set(state.events.map((e) => e.reason));
  const current = [...select.options].map((o) => o.value);
  for (const r of [...reasons].sort()) if (!current.includes(r)) select.add(new Option(r, r));
}

// ---- actions ----------------------------------------------------------------

// Each action: a label, the fields it asks for, and the control API call —
// the same call the CLI command makes.
const ACTIONS = {
  "network-block": { title: "Block Redis (network rule)", fields: [
      { name: "mode", type: "select", options: ["deny-new", "blackhole", "reset"] },
      { name: "duration_seconds", type: "number", value: 60, min: 0, help: "0 = until cleared" },
      { name: "no_reset", type: "checkbox", label: "don't reset the replicas' Redis connections" }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "network", mode: v.mode, duration_seconds: v.duration_seconds, no_reset: v.no_reset } }) },
  "network-latency": { title: "Add Redis latency", fields: [
      { name: "latency_ms", type: "number", value: 200, min: 0 }, { name: "jitter_ms", type: "number", value: 0, min: 0 },
      { name: "duration_seconds", type: "number", value: 60, min: 0 }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "network", mode: "latency", latency_ms: v.latency_ms, jitter_ms: v.jitter_ms, duration_seconds: v.duration_seconds } }) },
  "network-bandwidth": { title: "Limit Redis bandwidth", fields: [
      { name: "kbps", type: "number", value: 10, min: 1 }, { name: "duration_seconds", type: "number", value: 60, min: 0 }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "network", mode: "bandwidth", kbps: v.kbps, duration_seconds: v.duration_seconds } }) },
  "deploy": { title: "Bad deployment", fields: [{ name: "variant", type: "select", options: ["wrong-image", "bad-env", "bad-port"] }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "deploy", variant: v.variant } }) },
  "kill": { title: "Kill a replica", fields: [
      { name: "replica", type: "replica" }, { name: "signal", type: "select", options: ["KILL", "TERM"] }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "kill", replica: v.replica === "*" ? null : v.replica, all: v.replica === "*", signal: v.signal } }) },
  "redis": { title: "Redis server", fields: [{ name: "action", type: "select", options: ["stop", "restart"] },
      { name: "duration_seconds", type: "number", value: 0, min: 0, help: "stop only: restart by itself after this long, 0 = until cleared" }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "redis", action: v.action, duration_seconds: v.duration_seconds } }) },
  "auth": { title: "Redis credential", fields: [{ name: "action", type: "select", options: ["revoke", "restore"] }],
    call: (v) => api("/api/faults", { method: "POST", body: { kind: "auth", action: v.action } }) },
  "chaos-load": { title: "Internal load (chaos API)", fields: [
      { name: "level", type: "select", options: ["low", "medium", "high"] }, { name: "duration_seconds", type: "number", value: 60, min: 1, max: 3600 },
      { name: "all_replicas", type: "checkbox", label: "on every replica (else one, through the ingress)" }],
    call: (v) => api(`/api/chaos/load?all_replicas=${v.all_replicas}`, { method: "POST", body: { level: v.level, duration_seconds: v.duration_seconds } }) },
  "chaos-hang": { title: "Hang (chaos API)", fields: [
      { name: "scope", type: "select", options: ["process", "request"] }, { name: "duration_seconds", type: "number", value: 60, min: 0, max: 3600 },
      { name: "all_replicas", type: "checkbox", label: "on every replica" }],
    call: (v) => api(`/api/chaos/hang?all_replicas=${v.all_replicas}`, { method: "POST", body: { scope: v.scope, duration_seconds: v.duration_seconds } }) },
  "chaos-redis-reset": { title: "Reset Redis connections (chaos API)", fields: [{ name: "all_replicas", type: "checkbox", label: "on every replica", checked: true }],
    call: (v) => api(`/api/chaos/redis-reset?all_replicas=${v.all_replicas}`, { method: "POST", body: { force: true } }) },
};

const dialog = document.getElementById("action-dialog");
const form = document.getElementById("action-form");
let currentAction = null;

function openAction(key) {
  const action = ACTIONS[key];
  currentAction = key;
  document.getElementById("action-title").textContent = action.title;
  const fields = document.getElementById("action-fields");
  fields.innerHTML = "";
  for (const f of action.fields) {
    const id = `f-${f.name}`;
    const row = document.createElement("div");
    row.className = "field";
    let input;
    if (f.type === "select" || f.type === "replica") {
      input = document.createElement("select");
      const options = f.type === "replica"
        ? [["*", "all replicas"], ...((state.status && state.status.replicas) || []).map((r) => [r.id, r.id])]
        : f.options.map((o) => [o, o]);
      for (const [value, label] of options) input.add(new Option(label, value));
    } else {
      input = document.createElement("input");
      input.type = f.type;
      if (f.type === "number") { input.value = f.value; if (f.min != null) input.min = f.min; if (f.max != null) input.max = f.max; input.required = true; }
      if (f.type === "checkbox") input.checked = !!f.checked;
    }
    input.id = id;
    input.name = f.name;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = f.label || f.name.replace(/_/g, " ");
    if (f.type === "checkbox") row.append(input, label); else row.append(label, input);
    if (f.help) { const h = document.createElement("small"); h.textContent = f.help; row.append(h); }
    fields.append(row);
  }
  document.getElementById("action-error").textContent = "";
  dialog.showModal();
  const first = fields.querySelector("input,select");
  if (first) first.focus();
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (ev.submitter && ev.submitter.value === "cancel") { dialog.close(); return; }
  const action = ACTIONS[currentAction];
  const values = {};
  for (const f of action.fields) {
    const input = form.elements[f.name];
    values[f.name] = f.type === "number" ? Number(input.value) : f.type === "checkbox" ? input.checked : input.value;
  }
  const submit = form.querySelector("button[value=ok]");
  submit.disabled = true;
  try {
    const result = await action.call(values);
    dialog.close();
    toast(`${action.title}: done${result && result.id ? ` (${result.id})` : ""}`);
    refresh();
  } catch (e) {
    document.getElementById("action-error").textContent = e.message;
  } finally {
    submit.disabled = false;
  }
});

document.getElementById("actions").addEventListener("click", (ev) => {
  const key = ev.target.closest("button")?.dataset.action;
  if (key) openAction(key);
});

document.getElementById("faults").addEventListener("click", async (ev) => {
  const id = ev.target.closest("button")?.dataset.clear;
  if (!id) return;
  try { await api(`/api/faults/${encodeURIComponent(id)}`, { method: "DELETE" }); toast(`fault ${id} cleared`); refresh(); }
  catch (e) { toast(`could not clear ${id}: ${e.message}`, true); }
});

document.getElementById("clear-all").addEventListener("click", async () => {
  try { await api("/api/faults", { method: "DELETE" }); toast("all faults cleared"); refresh(); }
  catch (e) { toast(`could not clear faults: ${e.message}`, true); }
});

document.getElementById("event-filter").addEventListener("change", (ev) => {
  state.eventFilter = ev.target.value;
  renderEvents();
});

function toast(text, bad) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ""), 4000);
}

// ---- connection ------------------------------------------------------------

function setConnected(ok, detail) {
  state.connected = ok;
  const banner = document.getElementById("banner");
  banner.hidden = ok;
  if (!ok) banner.textContent = detail;
  document.body.classList.toggle("offline", !ok);
}

async function refresh() {
  try {
    const [status, faults] = await Promise.all([api("/api/status"), api("/api/faults").catch(() => [])]);
    state.status = status;
    state.faults = Array.isArray(faults) ? faults : faults.faults || [];
    setConnected(true);
    renderPanels();
  } catch (e) {
    setConnected(false, e.status === 401
      ? "The lab rejected this page's token: open the console URL that `chaoslab up` prints (it carries the token)."
      : "The lab is not reachable (stopped?). Retrying every 2 s…");
  }
}

// Keeps a stream open, reconnecting (after 2 s) whenever it ends or fails —
// e.g. when the lab stops and starts again.
async function keepStreaming(pathFn, onItem) {
  for (;;) {
    try { await stream(pathFn(), onItem); } catch { /* lab gone: retry */ }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function main() {
  await refresh();
  setInterval(refresh, 2000);
  keepStreaming(() => `/api/events?follow=true&since=${state.lastSeq}&limit=${MAX_EVENTS}`, addEvent);
  keepStreaming(() => {
    const last = state.points.length ? state.points[state.points.length - 1].unix_ms : 0;
    return `/api/metrics?follow=true&since_ms=${last}`;
  }, (p) => { if (Array.isArray(p)) p.forEach(addPoint); else addPoint(p); });
  // Charts redraw once a second (the data's resolution).
  setInterval(renderCharts, 1000);
  renderCharts();
}

main();
