// tunesmith ui: the small shared client. Every page script uses these helpers; no libraries.
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const params = new URLSearchParams(location.search);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

async function api(path, body, method) {
  const opts = { method: method || (body === undefined ? "GET" : "POST"), headers: { "X-Tunesmith-UI": "1" } };
  if (body instanceof Blob || body instanceof ArrayBuffer) opts.body = body;
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opts);
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((data && data.error) || (data && data.detail && JSON.stringify(data.detail)) || `${r.status}`);
  return data;
}

function showError(e, where) {
  const box = where || $("#error");
  box.textContent = e ? (e.message || String(e)) : "";
  box.hidden = !e;
}

const fmt = (v, d = 4) => (typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString() : v.toFixed(d)) : (v ?? ""));

// a table from rows (objects) and columns [{key, title, num, render}]; sortable columns sort on click
function table(rows, columns, sortable = false) {
  const t = el("table");
  const head = el("tr");
  const body = el("tbody");
  let order = { key: null, dir: 1 };
  const fill = () => {
    body.replaceChildren(...rows.map(r => el("tr", {}, columns.map(c =>
      el("td", { class: c.num ? "num" : "" }, c.render ? c.render(r) : fmt(r[c.key]))))));
  };
  for (const c of columns) {
    const th = el("th", { class: (c.num ? "num " : "") + (sortable ? "sortable" : ""), "data-key": c.key }, c.title ?? c.key);
    if (sortable) th.addEventListener("click", () => {
      order = { key: c.key, dir: order.key === c.key ? -order.dir : 1 };
      rows = [...rows].sort((a, b) => (a[c.key] > b[c.key] ? 1 : a[c.key] < b[c.key] ? -1 : 0) * order.dir);
      fill();
    });
    head.append(th);
  }
  t.append(el("thead", {}, head), body);
  fill();
  return t;
}

// ---- SVG charts ------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}
const COLORS = ["#2f5bd3", "#d0652a", "#1f8a4c", "#8e44ad", "#b7791f"];

// series: [{name, points: [[x, y], ...]}]
function lineChart(svg, series, xLabel = "step") {
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), L = 48, R = 10, T = 10, B = 30;
  svg.replaceChildren();
  const pts = series.flatMap(x => x.points);
  if (!pts.length) { svg.append(s("text", { x: L, y: H / 2 }, "no points yet")); return; }
  let [x0, x1] = [Math.min(...pts.map(p => p[0])), Math.max(...pts.map(p => p[0]))];
  let [y0, y1] = [Math.min(...pts.map(p => p[1])), Math.max(...pts.map(p => p[1]))];
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const X = x => L + (x - x0) / (x1 - x0) * (W - L - R), Y = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  svg.append(s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#bbb" }), s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#bbb" }));
  const digits = Math.max(0, Math.ceil(-Math.log10(y1 - y0)) + 1);  // enough to tell the ticks apart
  for (const v of [y0, (y0 + y1) / 2, y1]) svg.append(s("text", { x: 2, y: Y(v) + 4 }, v.toFixed(Math.min(digits, 6))));
  svg.append(s("text", { x: L, y: H - 8 }, `${xLabel} ${x0}`), s("text", { x: W - R - 60, y: H - 8 }, `${x1}`));
  series.forEach((sr, i) => {
    if (!sr.points.length) return;
    const d = sr.points.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    svg.append(s("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2, class: "series", "data-name": sr.name }));
    sr.points.forEach(p => svg.append(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: COLORS[i % COLORS.length] })));
    svg.append(s("text", { x: L + 8 + i * 110, y: T + 10, style: `fill:${COLORS[i % COLORS.length]}` }, sr.name));
  });
}

function barChart(svg, counts, edges, xLabel) {
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), L = 40, R = 10, T = 10, B = 30;
  svg.replaceChildren();
  const max = Math.max(1, ...counts), w = (W - L - R) / counts.length;
  counts.forEach((c, i) => {
    const h = c / max * (H - T - B);
    svg.append(s("rect", { x: L + i * w + 1, y: H - B - h, width: Math.max(1, w - 2), height: h, fill: COLORS[0], class: "bin" },
      undefined));
    svg.lastChild.append(s("title", {}, `${edges[i]}–${edges[i + 1]} tokens: ${c}`));
  });
  svg.append(s("text", { x: 2, y: T + 10 }, String(max)), s("text", { x: L, y: H - 8 }, `${edges[0]}`),
    s("text", { x: W - R - 40, y: H - 8 }, `${edges[edges.length - 1]}`), s("text", { x: W / 2 - 30, y: H - 8 }, xLabel));
}

// ---- the form carried from page to page ---------------------------------------------------------
const store = {
  get() { try { return JSON.parse(localStorage.getItem("tunesmith.form") || "{}"); } catch { return {}; } },
  set(values) { localStorage.setItem("tunesmith.form", JSON.stringify({ ...store.get(), ...values })); },
};

function statusBadge(status) { return el("span", { class: `status ${status}` }, status); }

// poll `fn` every `ms` until it returns false; errors are shown, polling goes on
function poll(fn, ms) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    let again = true;
    try { again = (await fn()) !== false; showError(null); } catch (e) { showError(e); }
    if (again && !stopped) setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; };
}

async function runOptions(select, filter, chosen) {
  const runs = (await api("/api/runs")).filter(filter);
  select.replaceChildren(el("option", { value: "" }, runs.length ? "— choose a run —" : "no runs yet"),
    ...runs.map(r => el("option", { value: r.id, selected: r.id === chosen }, `${r.id} (${r.task || "?"}, ${r.method || "?"})`)));
  return runs;
}
