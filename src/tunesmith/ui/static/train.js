// Train page: every run with its status (polled), and the chosen run's progress, curves and log.
"use strict";
let runId = params.get("run"), jobId = params.get("job");

function progressText(p, status) {
  if (!p) return "";
  const after = status === "complete" ? " · done" : status !== "running" ? "" :
    p.phase === "evaluating" ? " · evaluating and writing the report" : "";
  return `step ${p.step} / ${p.max_steps}${after}`;
}

async function refreshRuns() {
  const runs = await api("/api/runs");
  $("#runs").replaceChildren(runs.length ? table(runs, [
    { key: "id", title: "run", render: r => el("a", { href: `/train?run=${encodeURIComponent(r.id)}${r.job ? `&job=${r.job}` : ""}` }, r.id) },
    { key: "status", title: "status", render: r => statusBadge(r.status) },
    { key: "progress", title: "progress", render: r => r.progress ? el("span", {},
      el("progress", { max: r.progress.max_steps || 1, value: r.progress.step }), " ", `${r.progress.step}/${r.progress.max_steps}`) : "" },
    { key: "task", title: "task" }, { key: "method", title: "method" }, { key: "base_model", title: "model" },
    { key: "data", title: "data" }, { key: "test_accuracy", title: "test", num: true },
    { key: "links", title: "", render: r => r.status === "complete" ? el("span", {},
      el("a", { href: `/report?run=${encodeURIComponent(r.id)}` }, "report"), " · ", el("a", { href: `/try?run=${encodeURIComponent(r.id)}` }, "try")) : "" },
  ]) : el("p", { class: "muted" }, "No runs yet: start one on the Choose page."));
  return runs;
}

async function refreshJobs() {
  const jobs = await api("/api/jobs");
  $("#jobs").replaceChildren(jobs.length ? table(jobs, [
    { key: "id", title: "job", render: j => el("a", { href: `/train?job=${j.id}${j.run && j.kind === "finetune" ? `&run=${encodeURIComponent(j.run)}` : ""}` }, j.id) },
    { key: "kind", title: "kind" }, { key: "status", title: "status", render: j => statusBadge(j.status) },
    { key: "command", title: "command", render: j => el("code", {}, j.command) },
  ]) : el("p", { class: "muted" }, "No jobs yet."));
  return jobs;
}

async function refreshDetail() {
  if (!runId && !jobId) { $("#detail").hidden = true; return true; }
  $("#detail").hidden = false;
  const job = jobId ? await api(`/api/job?id=${encodeURIComponent(jobId)}`) : null;
  if (job) $("#log").textContent = job.log;
  if (job && job.kind === "compare" && job.status === "complete" && !$("#compare-out").childElementCount) {
    const f = n => `/api/run/file?id=${encodeURIComponent(job.run)}&name=${n}`;
    $("#compare-out").append(el("h3", {}, "Comparison ", el("a", { href: f("compare.md"), target: "_blank" }, "compare.md")),
      el("img", { class: "plot", id: "compare-png", src: f("compare.png"), alt: "compare.png" }));
  }
  let status = job ? job.status : "";
  $("#run-title").textContent = runId ? `Run ${runId}` : `Job ${jobId} (${job.kind})`;
  if (runId) {
    const run = await api(`/api/run?id=${encodeURIComponent(runId)}`).catch(() => null);
    if (run) {
      status = run.status || status;
      const p = run.progress;
      $("#run-progress").max = p && p.max_steps ? p.max_steps : 1;
      $("#run-progress").value = p ? p.step : 0;
      if (status === "complete") $("#run-progress").value = $("#run-progress").max;
      $("#run-step").textContent = status === "running" && !p ? "preparing: data, model, token statistics" : progressText(p, status);
      drawCurves(run.metrics || []);
      $("#resume").hidden = !run.resumable;
      $("#to-report").hidden = $("#to-try").hidden = status !== "complete";
      $("#to-report").href = `/report?run=${encodeURIComponent(runId)}`;
      $("#to-try").href = `/try?run=${encodeURIComponent(runId)}`;
    }
  }
  $("#run-status").className = `status ${status}`;
  $("#run-status").textContent = status;
  $("#run-status").dataset.status = status;
  $("#cancel").hidden = !(job && status === "running");
  return true;
}

function drawCurves(metrics) {
  const train = metrics.filter(m => m.kind === "train" && typeof m.loss === "number");
  const evals = metrics.filter(m => m.kind === "eval");
  lineChart($("#loss-chart"), [{ name: "train loss", points: train.map(m => [m.step, m.loss]) }]);
  const keys = ["accuracy", "f1", "loss"].filter(k => evals.some(m => typeof m[k] === "number"));
  lineChart($("#eval-chart"), keys.map(k => ({ name: `val ${k}`, points: evals.filter(m => typeof m[k] === "number").map(m => [m.step, m[k]]) })));
}

$("#cancel").addEventListener("click", async () => {
  $("#cancel").disabled = true;
  try { await api(`/api/job/cancel?id=${encodeURIComponent(jobId)}`, {}); } catch (e) { showError(e); }
  $("#cancel").disabled = false;
});
$("#resume").addEventListener("click", async () => {
  try {
    const run = await api(`/api/run?id=${encodeURIComponent(runId)}`);
    const job = await api(`/api/job/resume?id=${encodeURIComponent(run.job)}`, {});
    location.href = `/train?run=${encodeURIComponent(runId)}&job=${job.id}`;
  } catch (e) { showError(e); }
});

poll(async () => { await refreshDetail(); await refreshRuns(); await refreshJobs(); }, 1000);
