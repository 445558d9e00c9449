// Serve page: start/stop `tunesmith serve` for chosen runs; its /metrics, adapters and /v1/predict.
"use strict";

async function init() {
  const runs = (await api("/api/runs")).filter(r => r.status === "complete" && r.task === "classification");
  $("#serve-runs").replaceChildren(runs.length ? el("div", {}, runs.map(r => el("label", { class: "inline" },
    el("input", { type: "checkbox", value: r.id, class: "serve-run" }), `${r.id} (${r.method})`)))
    : el("p", { class: "muted" }, "No finished classification runs yet."));
  $("#serve-start").addEventListener("click", start);
  $("#serve-stop").addEventListener("click", async () => { try { await api("/api/serve/stop", {}); } catch (e) { showError(e); } });
  $("#serve-predict").addEventListener("click", ask);
  poll(refresh, 2000);
}

async function start() {
  const chosen = $$(".serve-run:checked").map(i => i.value);
  try { await api("/api/serve", { runs: chosen, port: +$("#serve-port").value }); showError(null); } catch (e) { showError(e); }
}

let adaptersShown = false;
async function refresh() {
  const s = await api("/api/serve");
  const state = !s.job ? "not started" : s.running ? (s.ready ? "ready" : "loading") : "stopped";
  $("#serve-status").textContent = state; $("#serve-status").className = `status ${s.ready ? "complete" : s.running ? "running" : "stopped"}`;
  $("#serve-status").dataset.state = state;
  $("#serve-command").textContent = s.argv ? "tunesmith " + s.argv.join(" ") : "";
  $("#serve-log").textContent = s.log || "";
  if (s.ready) {
    $("#serve-metrics").textContent = await api("/api/serve/metrics");
    if (!adaptersShown) {
      const a = await api("/api/serve/adapters");
      const names = (a.adapters || []).map(x => x.name || x);
      $("#serve-adapter").replaceChildren(...names.map(n => el("option", { value: n }, n)));
      adaptersShown = true;
    }
  } else adaptersShown = false;
}

async function ask() {
  try { $("#serve-answer").textContent = JSON.stringify(await api("/api/serve/predict", { adapter: $("#serve-adapter").value, texts: $("#serve-texts").value }), null, 1); }
  catch (e) { showError(e); }
}

init().catch(showError);
