// Data page: choose a source, inspect it through /api/data/inspect, carry the choice to Choose.
"use strict";
let current = null;

async function init() {
  const b = await api("/api/builtins");
  $("#source-builtin").append(...b.datasets.map(d => el("option", { value: d.name, disabled: !d.installed, title: d.description },
    d.name + (d.installed ? "" : " (not installed)"))));
  $("#models").append(...b.models.map(m => el("option", { value: m.name }, m.description)));
  const saved = store.get();
  if (saved["model.name"]) $("#model").value = saved["model.name"];
  if (saved["model.max_length"]) $("#max-length").value = saved["model.max_length"];
  const src = saved["data.dataset"];
  if (src && b.datasets.some(d => d.name === src)) $("#source-builtin").value = src; else if (src) $("#source-path").value = src;
  $("#source-builtin").addEventListener("change", () => { $("#source-path").value = ""; inspect(); });
  $("#source-upload").addEventListener("change", upload);
  $("#inspect").addEventListener("click", () => inspect());
  $("#text-column").addEventListener("change", () => inspect(true));
  $("#label-column").addEventListener("change", () => inspect(true));
  $("#next").addEventListener("click", () => save());
}

function source() { return $("#source-path").value.trim() || $("#source-builtin").value; }

async function upload() {
  const file = $("#source-upload").files[0];
  if (!file) return;
  try {
    const r = await api(`/api/upload?filename=${encodeURIComponent(file.name)}`, file);
    $("#source-path").value = r.path; $("#source-builtin").value = "";
    inspect();
  } catch (e) { showError(e); }
}

async function inspect(keepColumns = false) {
  const body = { source: source(), model: $("#model").value.trim(), max_length: +$("#max-length").value };
  if (keepColumns) { body.text_column = $("#text-column").value; body.label_column = $("#label-column").value; }
  $("#inspect").disabled = true; $("#inspect").textContent = "Reading…";
  try { current = await api("/api/data/inspect", body); render(current); showError(null); }
  catch (e) { $("#result").hidden = true; showError(e); }
  finally { $("#inspect").disabled = false; $("#inspect").textContent = "Inspect"; }
}

function columnSelect(select, columns, value) {
  select.replaceChildren(el("option", { value: "" }, "—"), ...columns.map(c => el("option", { value: c, selected: c === value }, c)));
}

function render(d) {
  $("#result").hidden = false;
  $("#summary").textContent = `${d.source}: ${d.n_records.toLocaleString()} records` +
    (d.n_rows !== undefined ? `, ${d.n_rows.toLocaleString()} with text and label` : "") +
    (d.meta && d.meta.dropped_neutral ? ` (${d.meta.dropped_neutral} neutral dropped: ${d.meta.rule})` : "");
  columnSelect($("#text-column"), d.columns, d.text_column);
  columnSelect($("#label-column"), d.columns, d.label_column);
  $("#text-column").disabled = $("#label-column").disabled = d.kind === "builtin";
  showError(d.column_error ? new Error(d.column_error) : null, $("#column-error"));
  $("#preview").replaceChildren(table(d.preview, d.columns.map(c => ({ key: c, title: c }))));
  if (d.classes) {
    const max = Math.max(...d.classes.map(c => c.count));
    $("#classes").replaceChildren(table(d.classes, [{ key: "label", title: "label" }, { key: "count", title: "count", num: true },
      { key: "share", title: "share", num: true, render: r => `${(100 * r.share).toFixed(1)}%` },
      { key: "bar", title: "", render: r => el("span", { class: "bar", style: `width:${Math.round(160 * r.count / max)}px` }) }]));
    const t = d.token_stats;
    $("#token-stats").replaceChildren(el("p", {},
      `${t.model}: mean ${fmt(t.mean, 1)}, median ${fmt(t.median, 1)}, p95 ${fmt(t.p95, 1)}, max ${t.max} tokens; ` +
      `${t.truncated} of ${t.count} (${(100 * t.truncated_share).toFixed(2)}%) longer than max_length ${t.max_length}` +
      (t.sampled ? ` (a sample of ${t.count.toLocaleString()} of ${t.of.toLocaleString()})` : "")));
    barChart($("#histogram"), t.histogram.counts, t.histogram.edges, "tokens per text");
  } else {
    $("#classes").replaceChildren(el("p", { class: "muted" }, "choose the text and label columns"));
    $("#token-stats").replaceChildren(); $("#histogram").replaceChildren();
  }
  $("#next").hidden = !d.classes;
}

function save() {
  const d = current || {};
  store.set({ "data.dataset": d.source || source(), "data.text_column": d.kind === "file" ? d.text_column : "",
    "data.label_column": d.kind === "file" ? d.label_column : "", "model.name": $("#model").value.trim(),
    "model.max_length": $("#max-length").value });
}

init().catch(showError);
