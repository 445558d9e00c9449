// Try page: texts -> /api/try (the Predictor) -> labels with scores, highlighted entities, generations.
"use strict";

async function init() {
  await runOptions($("#try-run"), r => r.status === "complete", params.get("run"));
  $("#try-go").addEventListener("click", go);
}

async function go() {
  const body = { run: $("#try-run").value || null, model: $("#try-model").value.trim() || null,
    task: $("#try-task").value || null, texts: $("#try-texts").value };
  $("#try-go").disabled = true; $("#try-busy").hidden = false;
  try { render(await api("/api/try", body)); showError(null); }
  catch (e) { showError(e); }
  finally { $("#try-go").disabled = false; $("#try-busy").hidden = true; }
}

function highlight(text, spans) {
  const out = []; let at = 0;
  for (const e of [...spans].sort((a, b) => a.start - b.start)) {
    if (e.start < at) continue;
    out.push(text.slice(at, e.start), el("mark", { title: `${e.entity_group} ${fmt(e.score, 3)}` }, text.slice(e.start, e.end), el("sup", {}, e.entity_group)));
    at = e.end;
  }
  out.push(text.slice(at));
  return el("p", { class: "ner" }, out);
}

function render(d) {
  const rows = d.texts.map((text, i) => ({ text, r: d.results[i] }));
  const view = {
    "classification": x => el("div", { class: "prediction" }, el("p", {}, el("strong", { class: "label" }, x.r.label), ` ${fmt(x.r.score, 3)} — `, x.text),
      table(Object.entries(x.r.scores || {}).map(([label, score]) => ({ label, score })), [{ key: "label", title: "label" },
        { key: "score", title: "score", num: true }, { key: "bar", title: "", render: s => el("span", { class: "bar", style: `width:${Math.round(200 * s.score)}px` }) }])),
    "token-classification": x => el("div", { class: "prediction" }, highlight(x.text, x.r.entities || [])),
    "fill-mask": x => el("div", { class: "prediction" }, el("p", {}, x.text), ...(x.r.predictions || []).map((top, i) =>
      table(top, [{ key: "token", title: `mask ${i + 1}` }, { key: "score", title: "score", num: true }]))),
    "generation": x => el("div", { class: "prediction" }, el("p", {}, el("strong", {}, x.text)), ...(x.r.generated || []).map(g => el("pre", { class: "code" }, g))),
  }[d.task];
  $("#try-results").replaceChildren(el("p", { class: "muted" }, `task: ${d.task}`), ...rows.map(view));
}

init().catch(showError);
