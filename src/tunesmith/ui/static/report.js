// Report page: a finished run's metrics, plots, per-class and parameter tables, misclassified examples.
"use strict";

async function init() {
  const chosen = params.get("run");
  await runOptions($("#run-select"), r => r.status === "complete", chosen);
  $("#run-select").addEventListener("change", () => {
    history.replaceState(null, "", `/report?run=${encodeURIComponent($("#run-select").value)}`);
    load($("#run-select").value);
  });
  if (chosen) load(chosen);
}

const file = (id, name) => `/api/run/file?id=${encodeURIComponent(id)}&name=${encodeURIComponent(name)}`;

async function load(id) {
  if (!id) { $("#report").hidden = true; return; }
  try {
    const d = await api(`/api/run/report?id=${encodeURIComponent(id)}`);
    render(id, d);
    showError(null);
  } catch (e) { showError(e); }
}

function render(id, d) {
  const r = d.report;
  $("#report").hidden = false;
  $("#report-md").hidden = !d.has_markdown; $("#report-md").href = file(id, "report.md");
  $("#config-yaml").hidden = false; $("#config-yaml").href = file(id, "config.yaml");
  if (!r) { $("#summary").textContent = "This run has not written its report yet."; return; }
  const t = r.training || {};
  $("#summary").textContent = `${r.task}: ${r.model} on ${r.data}, method ${r.method}; ` +
    `${t.steps} steps, ${fmt(t.epochs, 2)} epochs, ${fmt(t.seconds, 1)} s` + (r.learning_rate ? `, lr ${r.learning_rate}` : "");
  const ev = r.evaluation || {};
  const splits = Object.entries(ev).map(([split, m]) => ({ split, ...(m.after || m) }));
  const keys = ["n", "accuracy", "precision", "recall", "f1", "token_accuracy", "perplexity", "loss"]
    .filter(k => splits.some(s => typeof s[k] === "number"));
  $("#metrics").replaceChildren(table(splits, [{ key: "split", title: "split" }, ...keys.map(k => ({ key: k, title: k, num: true }))]));
  const img = name => d.images.includes(name) ? el("img", { class: "plot", src: file(id, name), alt: name, id: `img-${name.split(".")[0]}` }) : el("p", { class: "muted" }, "—");
  $("#confusion").replaceChildren(img("confusion_matrix.png"));
  $("#curve").replaceChildren(img("learning_curve.png"));
  const main = ev.test || ev.validation || {};
  const per = main.per_class || main.per_type || {};
  $("#per-class").replaceChildren(Object.keys(per).length ? table(Object.entries(per).map(([c, v]) => ({ class: c, ...v })),
    [{ key: "class", title: "class" }, ...["precision", "recall", "f1", "support"].map(k => ({ key: k, title: k, num: true }))], true)
    : el("p", { class: "muted" }, "—"));
  const p = d.params || r.params;
  $("#params").replaceChildren(p ? table([...Object.entries(p.groups || {}).map(([g, v]) => ({ group: g, ...v })),
    { group: "all", total: p.total, trainable: p.trainable }],
    [{ key: "group", title: "" }, { key: "total", title: "total", num: true }, { key: "trainable", title: "trainable", num: true },
     { key: "pct", title: "%", num: true, render: x => `${(100 * x.trainable / Math.max(1, x.total)).toFixed(2)}%` }]) : "—");
  const others = d.images.filter(n => !["confusion_matrix.png", "learning_curve.png"].includes(n));
  $("#extra-card").hidden = !(others.length || r.samples || r.example);
  $("#extra").replaceChildren(...others.map(n => el("figure", {}, el("img", { class: "plot", src: file(id, n), alt: n }), el("figcaption", {}, n))),
    r.samples ? table(r.samples, [{ key: "prompt", title: "prompt" }, { key: "before", title: "before" }, { key: "after", title: "after" }]) : "",
    r.example ? el("pre", { class: "code" }, JSON.stringify(r.example, null, 1)) : "");
  loadErrors(id, r.task);
}

async function loadErrors(id, task) {
  if (task !== "classification") { $("#errors").textContent = "Listed for classification runs."; return; }
  $("#errors").textContent = "predicting the held-out split…";
  try {
    const e = await api(`/api/run/errors?id=${encodeURIComponent(id)}`);
    $("#errors").replaceChildren(el("p", {}, `${e.errors.length} of ${e.n} ${e.split} examples misclassified`),
      el("div", { class: "scroll" }, table(e.errors, [{ key: "text", title: "text" }, { key: "gold", title: "gold" },
        { key: "predicted", title: "predicted" }, { key: "confidence", title: "confidence", num: true }, { key: "line", title: "line", num: true }], true)));
  } catch (err) { $("#errors").textContent = err.message; }
}

init().catch(showError);
