// Choose page: the config form (from /api/form), advise, the equivalent command and YAML, start jobs.
"use strict";
let fields = [], advice = null, timer = null;

async function init() {
  fields = (await api("/api/form")).fields;
  const saved = store.get();
  const form = $("#config-form");
  for (const f of fields) {
    const value = saved[f.key] ?? (f.default ?? "");
    const input = f.choices
      ? el("select", { name: f.key }, f.choices.map(c => el("option", { value: c, selected: String(value) === c }, c)))
      : el("input", { name: f.key, type: "text", value: String(value), placeholder: f.default === null ? "default" : "" });
    form.append(el("label", { title: f.help }, f.key, input));
  }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  const methods = fields.find(f => f.key === "method.name").choices;
  $("#compare-methods").append(...methods.map(m => el("label", { class: "inline" },
    el("input", { type: "checkbox", value: m, checked: ["full", "lora", "head"].includes(m) }), m)));
  $("#advise").addEventListener("click", adviseNow);
  $("#apply-advice").addEventListener("click", applyAdvice);
  $("#probe").addEventListener("click", () => start("advise"));
  $("#start-train").addEventListener("click", () => start("finetune"));
  $("#start-compare").addEventListener("click", () => start("compare"));
  describe();
}

function values() {
  const out = {};
  for (const input of $$("#config-form [name]")) out[input.name] = input.value;
  return out;
}

function changed() {
  store.set(values());
  clearTimeout(timer);
  timer = setTimeout(describe, 250);
}

async function describe() {
  try {
    const d = await api("/api/config", { config: values() });
    $("#command").textContent = d.command;
    $("#yaml").textContent = d.yaml;
    const link = $("#download-yaml");
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([d.yaml], { type: "text/yaml" }));
    showError(null, $("#config-error"));
    $("#start-train").disabled = false;
  } catch (e) { showError(e, $("#config-error")); $("#start-train").disabled = true; }
}

async function adviseNow() {
  $("#advise").disabled = true;
  try {
    advice = await api("/api/advise", { config: values() });
    const a = advice, sit = a.situation;
    $("#advice").replaceChildren(
      el("p", {}, `${sit.samples.toLocaleString()} training examples, ${sit.labels} classes, memory ${sit.memory}, batch ${sit.batch} × ${sit.seq} tokens`),
      el("p", {}, "Recommended: ", el("strong", { id: "advice-method" }, a.method)),
      el("pre", { class: "code" }, a.command),
      el("h3", {}, "Why"), el("ul", { class: "reasons" }, a.reasons.map(r => el("li", {}, r))),
      el("h3", {}, "Estimated training memory"),
      table([...a.memory, { row: "trainable params", values: a.trainable.map(v => v.toLocaleString()) },
             { row: "artifact per task", values: a.artifact }],
        [{ key: "row", title: "" }, ...a.methods.map((m, i) => ({ key: m, title: m, num: true, render: r => r.values[i] }))]),
      el("h3", {}, "What would change the advice"), el("ul", { class: "reasons" }, a.changes.map(r => el("li", {}, r))));
    $("#apply-advice").disabled = false;
  } catch (e) { showError(e); } finally { $("#advise").disabled = false; }
}

function applyAdvice() {
  for (const [k, v] of Object.entries(advice.settings)) {
    const input = $(`#config-form [name="${k}"]`);
    if (input) input.value = String(v);
  }
  changed();
}

async function start(kind) {
  const body = { kind, config: values() };
  if (kind === "compare") body.methods = $$("#compare-methods input:checked").map(i => i.value);
  try {
    const job = await api("/api/jobs", body);
    location.href = job.kind === "finetune" ? `/train?run=${encodeURIComponent(job.run)}&job=${job.id}` : `/train?job=${job.id}`;
  } catch (e) { showError(e); }
}

init().catch(showError);
