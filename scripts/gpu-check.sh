#!/usr/bin/env bash
# GPU check of tunesmith, end to end, in under 9 minutes on one recent GPU (small budgets).
#
#   bash scripts/gpu-check.sh              # on a CUDA machine with the repo and its .venv
#   PYTHON=/path/to/python bash scripts/gpu-check.sh
#   bash scripts/gpu-check.sh --dry-run    # the same steps on the CPU with tiny budgets
#   CUDA_CHECK_DEVICE=cpu bash scripts/gpu-check.sh   # same as --dry-run
#
# Steps (each one logged to $WORK/logs/NAME.log, its tail printed):
#   correctness  env, finetune full + LoRA (auto precision), pretrain MLM (before/after metrics
#                and fill-mask on the trained model), predict on the device vs the CPU fp32
#                reference, fill-mask through predict, serve (start, requests, stop) vs predict,
#                a 100,000-line predict (the compiled path) on the GPU
#   measurement  tunesmith bench infer (pipeline baseline on the same device), tunesmith bench train
# Exit status: 0 when every correctness step passed (measurement failures are reported, not
# counted), 1 when one failed, 2 on bad usage. Budget: GPU_CHECK_BUDGET_S (default 510 s); a step
# that would start with too little time left is reported as SKIP.
# Environment: PYTHON, CUDA_CHECK_DEVICE (cuda | cuda:N | cpu), GPU_CHECK_DIR (work dir, default a
# new /tmp dir), GPU_CHECK_BUDGET_S, GPU_CHECK_BENCH_TRAIN_ARGS (extra args for `bench train`).
set -uo pipefail  # no -e: every step runs; failures are collected for the summary

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$arg' (use --dry-run or --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
DEVICE=${CUDA_CHECK_DEVICE:-cuda}
[ "$DRY" = 1 ] && DEVICE=cpu
[ "$DEVICE" = cpu ] && DRY=1
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
  echo "gpu-check: no python at $PY (make setup, or set PYTHON=...)" >&2; exit 2
fi
WORK=${GPU_CHECK_DIR:-$(mktemp -d /tmp/tunesmith-gpu-check.XXXXXX)}
LOGS=$WORK/logs
mkdir -p "$LOGS" || exit 2
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, also without an editable install
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

if [ "$DRY" = 1 ]; then  # tiny budgets: proves the script, measures nothing worth quoting
  BUDGET=${GPU_CHECK_BUDGET_S:-3600}; SCALE=6  # a shared CPU is slow: longer step limits
  MAX_TRAIN=120; MAX_EVAL=100; STEPS=3; BATCH=16; FLOOR=0
  PRE_DOCS=150; PRE_STEPS=2; PRE_EVAL=16; N_TEXTS=100; N_LONG=0; N_REQ=12
  BENCH_INFER=(--paths bf16 --rounds 1 --limit 64 --textbook-limit 16)
else
  BUDGET=${GPU_CHECK_BUDGET_S:-510}; SCALE=1
  MAX_TRAIN=2000; MAX_EVAL=""; STEPS=60; BATCH=32; FLOOR=0.55
  PRE_DOCS=2000; PRE_STEPS=40; PRE_EVAL=200; N_TEXTS=1000; N_LONG=100000; N_REQ=200
  BENCH_INFER=(--paths bf16,fp16,bf16-compile --rounds 2 --textbook-limit 200)
fi

# ---- bookkeeping -----------------------------------------------------------------------------
SUMMARY=()
CORRECT_FAILED=0
MEASURE_FAILED=0
note() { SUMMARY+=("$(printf '%-5s %-12s %-18s %s' "$1" "$2" "$3" "$4")"); echo "   => $1 $3: $4"; }
pass() { note OK "$1" "$2" "$3"; }
fail() { note FAIL "$1" "$2" "$3"; if [ "$1" = correctness ]; then CORRECT_FAILED=1; else MEASURE_FAILED=1; fi; }
left() { echo $(( BUDGET - SECONDS )); }

# run KIND NAME LIMIT_S [MIN_S] -- CMD...: run CMD under a timeout, log it, print its tail.
# Returns CMD's status (124: timed out; 200: skipped for lack of time).
run() {
  local kind=$1 name=$2 limit=$3 need=$4; shift 5
  local remaining; remaining=$(left)
  limit=$(( limit * SCALE ))
  if (( remaining < need )); then
    note SKIP "$kind" "$name" "only ${remaining}s of the ${BUDGET}s budget left (needs ~${need}s)"
    return 200
  fi
  (( limit > remaining )) && limit=$remaining
  echo "== $name ($kind, limit ${limit}s): ${*:1:12}"
  local t0=$SECONDS rc
  timeout --kill-after=15 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  tail -n "${TAIL:-12}" "$LOGS/$name.log" | sed 's/^/   | /'
  echo "   ($((SECONDS - t0)) s, exit $rc)"
  if (( rc == 124 || rc == 137 )); then fail "$kind" "$name" "timed out after ${limit}s (log: $LOGS/$name.log)"
  elif (( rc != 0 )); then fail "$kind" "$name" "exit $rc (log: $LOGS/$name.log)"
  else pass "$kind" "$name" "exit 0 in $((SECONDS - t0)) s"
  fi
  return $rc
}
TS=("$PY" -m tunesmith.cli)  # arrays, not functions: `timeout` runs executables only

# checks in Python: one file, one subcommand per check; each prints what it measured and exits
# non-zero with the reason when the check fails
CHECK=$WORK/check.py
cat >"$CHECK" <<'PYCHECK'
import json, math, sys, time
from pathlib import Path


def die(msg):
    print(f"CHECK FAILED: {msg}")
    sys.exit(1)


def finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def env(device, out):
    import torch
    from tunesmith.precision import auto_precision, native_bf16, resolve_device
    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available {torch.cuda.is_available()}")
    dev = resolve_device(device)
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        print(f"device {dev}: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB")
    print(f"native bf16 {native_bf16(dev)}; auto precision: {auto_precision(dev)}")
    x = torch.randn(256, 256, device=dev)
    if not torch.allclose((x @ x).cpu(), x.cpu() @ x.cpu(), atol=1e-2, rtol=1e-3):
        die("a matmul on the device disagrees with the CPU")
    Path(out).write_text(auto_precision(dev)[0] + "\n")


def finetune(run, floor):
    run, floor = Path(run), float(floor)
    info = json.loads((run / "run.json").read_text())
    if info.get("status") != "complete":
        die(f"run status {info.get('status')}")
    r = json.loads((run / "report.json").read_text())
    t, ev = r["training"], r["evaluation"]
    test = ev.get("test") or ev.get("validation")
    cfg = (run / "config.yaml").read_text()
    prec = [l.strip() for l in cfg.splitlines() if l.strip().startswith(("precision", "bf16", "fp16"))]
    print(f"{r['method']}: {t['steps']} steps in {t['seconds']} s ({t['samples_per_second']} samples/s), "
          f"train loss {t['train_loss']:.4f}; {test['split']} accuracy {test['accuracy']:.4f} F1 {test['f1']:.4f} "
          f"(n={test['n']}); precision setting: {', '.join(prec) or 'none in config.yaml (fp32 Trainer)'}")
    if not finite(t["train_loss"]):
        die(f"train loss {t['train_loss']}")
    if test["accuracy"] < floor:
        die(f"accuracy {test['accuracy']:.4f} below the floor {floor} (chance is 0.5): training is broken")


def pretrain(run):
    r = json.loads((Path(run) / "report.json").read_text())
    b, a = r["before"]["metrics"], r["after"]["metrics"]
    print(f"{r['training']['steps']} steps in {r['training']['seconds']} s; held-out loss {b['loss']:.4f} -> "
          f"{a['loss']:.4f}, top1 {b['top1']:.4f} -> {a['top1']:.4f}, pseudo-perplexity "
          f"{b.get('pseudo_perplexity', float('nan')):.1f} -> {a.get('pseudo_perplexity', float('nan')):.1f}")
    for m in (a["loss"], a["top1"], a.get("pseudo_perplexity", 0.0)):
        if not finite(m):
            die(f"after-training metric {m} is not finite")
    probes = r["after"]["fill_mask"]
    if len(probes) != 5 or not all(p["masks"] and p["masks"][0] for p in probes):
        die(f"fill-mask probes after training incomplete: {probes}")
    print("after: " + " | ".join(f"{p['text']} -> {p['masks'][0][0]['token']}" for p in probes[:3]))


def read(path):
    rows = [json.loads(l) for l in open(path, encoding="utf-8")]
    bad = [r for r in rows if "error" in r]
    if bad:
        die(f"{path}: {len(bad)} error records, first {bad[0]}")
    return rows


def compare(a, b, min_agree, max_diff, what):
    """Labels agree on at least min_agree of the texts, scores differ by at most max_diff."""
    min_agree, max_diff = float(min_agree), float(max_diff)
    ra, rb = read(a), read(b)
    if len(ra) != len(rb):
        die(f"{what}: {len(ra)} vs {len(rb)} records")
    agree = sum(x["label"] == y["label"] for x, y in zip(ra, rb)) / len(ra)
    diffs = [abs(x["scores"][k] - y["scores"][k]) for x, y in zip(ra, rb) for k in x["scores"]]
    mx, mean = max(diffs), sum(diffs) / len(diffs)
    print(f"{what}: {len(ra)} texts, labels agree {100 * agree:.2f}%, |score diff| max {mx:.2e} mean {mean:.2e}")
    if agree < min_agree or mx > max_diff:
        die(f"{what}: needs >= {100 * min_agree:.1f}% agreement and max diff <= {max_diff}")


def fill(path):
    out = json.loads(Path(path).read_text().strip().splitlines()[-1])
    preds = out.get("predictions") or []
    if not preds or not preds[0]:
        die(f"no fill-mask predictions: {out}")
    print("fill-mask on the device: " + ", ".join(f"{p['token']} {p['score']:.3f}" for p in preds[0][:5]))


def http(port, method, path, body=None, timeout=60):
    import urllib.error, urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        try:
            return r.status, json.loads(raw or b"null")
        except ValueError:  # /metrics is Prometheus text
            return r.status, raw.decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return None, None


def wait_ready(port, seconds):
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        status, body = http(port, "GET", "/readyz", timeout=5)
        if status == 200:
            print(f"ready: {body}")
            return
        time.sleep(0.5)
    die(f"server not ready after {seconds} s")


def serve(port, texts, lora_preds, full_preds, precision_file, n_req, tol):
    from concurrent.futures import ThreadPoolExecutor
    tol = float(tol)
    texts = [l.rstrip("\n") for l in open(texts, encoding="utf-8")][:32]
    status, ready = http(port, "GET", "/readyz")
    want = Path(precision_file).read_text().strip()
    if status != 200 or ready.get("precision") != want:
        die(f"readyz {status} {ready}: the server's precision should be predict's auto precision {want}")
    for name, ref_path in (("sent", lora_preds), ("whole", full_preds)):
        ref = read(ref_path)[:len(texts)]
        status, body = http(port, "POST", "/v1/predict", {"adapter": name, "inputs": texts, "all_scores": True})
        if status != 200:
            die(f"/v1/predict {name}: HTTP {status}")
        got = body["predictions"]
        mx = max(abs(g["scores"][k] - r["scores"][k]) for g, r in zip(got, ref) for k in r["scores"])
        agree = sum(g["label"] == r["label"] for g, r in zip(got, ref)) / len(ref)
        print(f"serve '{name}' vs predict: labels agree {100 * agree:.1f}%, max |score diff| {mx:.2e}")
        if mx > tol:
            die(f"serve '{name}' scores differ from predict's by {mx:.2e} (> {tol})")

    def one(i):
        t0 = time.perf_counter()
        s, b = http(port, "POST", "/v1/predict", {"adapter": ("sent", "whole")[i % 2], "inputs": texts[i % 8:i % 8 + 4]})
        ok = s == 200 and b is not None and len(b["predictions"]) == len(texts[i % 8:i % 8 + 4])
        return s, ok, time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:
        res = list(ex.map(one, range(int(n_req))))
    wall = time.perf_counter() - t0
    lat = sorted(r[2] for r in res)
    codes = {}
    for s, _, _ in res:
        codes[s] = codes.get(s, 0) + 1
    print(f"{len(res)} requests, 8 concurrent: {len(res) / wall:.1f} req/s, p50 {1000 * lat[len(lat) // 2]:.0f} ms, "
          f"p99 {1000 * lat[int(0.99 * (len(lat) - 1))]:.0f} ms, status codes {codes}")
    if any(s is None or s >= 500 for s in codes) or not all(ok for s, ok, _ in res if s == 200):
        die("5xx, dropped connections or wrong answers under load")
    status, metrics = http(port, "GET", "/metrics")
    if status != 200 or "tunesmith_requests_total" not in str(metrics):
        die(f"/metrics: HTTP {status} without tunesmith_requests_total")
    print(f"/metrics HTTP {status}, {len(str(metrics).splitlines())} lines")


def texts(n, out, long_n, long_out):
    from tunesmith.config import DataConfig
    from tunesmith.data.labelled import load_labelled
    rows = [r["text"].replace("\n", " ") for r in load_labelled(DataConfig()).splits["test"]]
    Path(out).write_text("\n".join((rows * (int(n) // len(rows) + 1))[:int(n)]) + "\n", encoding="utf-8")
    if int(long_n):
        Path(long_out).write_text("\n".join((rows * (int(long_n) // len(rows) + 1))[:int(long_n)]) + "\n",
                                  encoding="utf-8")
    print(f"{n} texts in {out}" + (f", {long_n} in {long_out}" if int(long_n) else ""))


def long(path, n, short_path, seconds):
    rows = read(path)
    if len(rows) != int(n):
        die(f"{len(rows)} records for {n} lines")
    short = read(short_path)
    agree = sum(a["label"] == b["label"] for a, b in zip(rows, short)) / len(short)
    print(f"{n} lines in {seconds} s ({int(n) / max(float(seconds), 1e-9):.0f} lines/s, compile and load "
          f"included); first {len(short)} labels agree with the short run's {100 * agree:.2f}%")
    if agree < 0.98:
        die("the compiled path's labels differ from the eager path's on more than 2% of texts")


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
PYCHECK
CHK=("$PY" "$CHECK")

echo "tunesmith gpu-check: device $DEVICE$([ "$DRY" = 1 ] && echo ' (dry run: tiny budgets)'), work dir $WORK, budget ${BUDGET}s"

# ---- 1. environment ------------------------------------------------------------------------------
if ! run correctness env 120 10 -- "${CHK[@]}" env "$DEVICE" "$WORK/precision.txt"; then
  echo "gpu-check: no usable $DEVICE device; nothing else can run" >&2
  printf '%s\n' "${SUMMARY[@]}"; exit 1
fi
AUTO=$(cat "$WORK/precision.txt")

# ---- 2. fine-tuning: full and LoRA, auto precision --------------------------------------------------
PREC=()  # the training precision flag, where this build has one (the lead is adding it)
PREC_PT=()
precision_flag() {  # the flag that sets the training precision in this build's `$1 --help`, if any
  local help; help=$("${TS[@]}" "$1" --help 2>/dev/null)
  if grep -q -- '--train.precision' <<<"$help"; then echo "--train.precision=auto"
  elif grep -q -- '--precision' <<<"$help"; then echo "--precision=auto"; fi
}
flag=$(precision_flag finetune); [ -n "$flag" ] && PREC=("$flag")
flag=$(precision_flag pretrain); [ -n "$flag" ] && PREC_PT=("$flag")
echo "training precision flag: finetune ${PREC[*]:-(none in this build: fp32)}, pretrain ${PREC_PT[*]:-(none: fp32)}"
FT=(--model minilm --data movie-reviews "--data.max_train=$MAX_TRAIN" "--train.max_steps=$STEPS"
    --batch-size "$BATCH" --max-length 64 --output.overwrite=true "${PREC[@]}")
[ -n "$MAX_EVAL" ] && FT+=("--data.max_eval=$MAX_EVAL")
for method in full lora; do
  extra=(); [ "$method" = lora ] && extra=(--lr 1e-3)
  if run correctness "finetune-$method" 180 60 -- "${TS[@]}" finetune "${FT[@]}" --method "$method" "${extra[@]}" \
      --output "$WORK/$method"; then
    if "${CHK[@]}" finetune "$WORK/$method" "$FLOOR" >"$LOGS/check-$method.log" 2>&1; then
      pass correctness "finetune-$method" "$(tail -n 1 "$LOGS/check-$method.log")"
    else fail correctness "finetune-$method" "$(tail -n 1 "$LOGS/check-$method.log")"; fi
  fi
done

# ---- 3. pre-training: MLM, before/after metrics and fill-mask on the trained model -------------------
if run correctness pretrain 180 60 -- "${TS[@]}" pretrain --model minilm --corpus movie-reviews \
    "--corpus.max_documents=$PRE_DOCS" "--train.max_steps=$PRE_STEPS" "--objective.eval_examples=$PRE_EVAL" \
    --max-length 64 --output "$WORK/mlm" --output.overwrite=true "${PREC_PT[@]}"; then
  if "${CHK[@]}" pretrain "$WORK/mlm" >"$LOGS/check-pretrain.log" 2>&1; then
    pass correctness pretrain "$(tail -n 2 "$LOGS/check-pretrain.log" | head -n 1)"
  else fail correctness pretrain "$(tail -n 1 "$LOGS/check-pretrain.log")"; fi
fi

# ---- 4. predict: the device's default path and fp32 vs the CPU fp32 reference -------------------------
"${CHK[@]}" texts "$N_TEXTS" "$WORK/texts.txt" "$N_LONG" "$WORK/long.txt" >"$LOGS/texts.log" 2>&1 \
  || fail correctness texts "$(tail -n 1 "$LOGS/texts.log")"
PRED=(--input "$WORK/texts.txt" --all-scores --no-progress --overwrite)
if [ -f "$WORK/full/run.json" ]; then
  run correctness predict-auto 120 30 -- "${TS[@]}" predict "$WORK/full" "${PRED[@]}" --device "$DEVICE" \
    --output "$WORK/p-auto.jsonl" && grep -h "execution path" "$LOGS/predict-auto.log" | sed 's/^/   /'
  run correctness predict-fp32 120 30 -- "${TS[@]}" predict "$WORK/full" "${PRED[@]}" --device "$DEVICE" --fast fp32 \
    --output "$WORK/p-fp32.jsonl"
  if [ "$DRY" = 0 ]; then
    run correctness predict-cpu 180 40 -- "${TS[@]}" predict "$WORK/full" "${PRED[@]}" --device cpu --fast fp32 \
      --output "$WORK/p-cpu.jsonl"
  else cp "$WORK/p-fp32.jsonl" "$WORK/p-cpu.jsonl" 2>/dev/null; fi
  if [ -s "$WORK/p-cpu.jsonl" ] && [ -s "$WORK/p-fp32.jsonl" ] && [ -s "$WORK/p-auto.jsonl" ]; then
    # fp32 on the GPU must be the CPU's fp32 to rounding; the auto path (bf16/fp16) within its precision
    for pair in "p-fp32 0.998 0.002" "p-auto 0.98 0.08"; do
      set -- $pair
      if "${CHK[@]}" compare "$WORK/$1.jsonl" "$WORK/p-cpu.jsonl" "$2" "$3" "$1 on $DEVICE vs fp32 on cpu" \
          >"$LOGS/check-$1.log" 2>&1; then pass correctness "$1-vs-cpu" "$(tail -n 1 "$LOGS/check-$1.log")"
      else fail correctness "$1-vs-cpu" "$(tail -n 1 "$LOGS/check-$1.log")"; fi
    done
  fi
fi
if [ -f "$WORK/lora/run.json" ]; then
  run correctness predict-lora 120 30 -- "${TS[@]}" predict "$WORK/lora" "${PRED[@]}" --device "$DEVICE" \
    --output "$WORK/p-lora.jsonl"
fi
if [ -f "$WORK/mlm/run.json" ]; then
  # a pretrain run records task "pretrain": predict needs to be told which head to use
  if run correctness predict-fill-mask 120 30 -- "${TS[@]}" predict "$WORK/mlm" "The film is [MASK] and the acting is wonderful." \
      --task fill-mask --device "$DEVICE" --output "$WORK/p-fill.jsonl"; then
    if "${CHK[@]}" fill "$WORK/p-fill.jsonl" >"$LOGS/check-fill.log" 2>&1; then
      pass correctness predict-fill-mask "$(tail -n 1 "$LOGS/check-fill.log")"
    else fail correctness predict-fill-mask "$(tail -n 1 "$LOGS/check-fill.log")"; fi
  fi
fi

# ---- 5. serve: start, requests (scores vs predict, a burst), stop ------------------------------------
if [ -s "$WORK/p-lora.jsonl" ] && [ -s "$WORK/p-auto.jsonl" ] && (( $(left) > 60 )); then
  PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "== serve (correctness): port $PORT"
  t0=$SECONDS
  "${TS[@]}" serve --base minilm --adapter-root "$WORK" --adapter sent=lora --adapter whole=full --port "$PORT" \
    "--model.device=$DEVICE" >"$LOGS/serve.log" 2>&1 &
  SERVER=$!
  TOL=0.03; [ "$AUTO" = fp32 ] && TOL=0.0005  # unmerged LoRA vs merged: bf16/fp16 rounding apart
  limit=$(( $(left) > 150 * SCALE ? 150 * SCALE : $(left) ))  # the budget holds for the server too
  if "${CHK[@]}" wait_ready "$PORT" "$limit" >"$LOGS/check-serve.log" 2>&1 && \
      timeout "$(( $(left) > 30 ? $(left) : 30 ))" "${CHK[@]}" serve "$PORT" "$WORK/texts.txt" "$WORK/p-lora.jsonl" \
        "$WORK/p-auto.jsonl" "$WORK/precision.txt" "$N_REQ" "$TOL" >>"$LOGS/check-serve.log" 2>&1; then
    sed 's/^/   | /' "$LOGS/check-serve.log"
    pass correctness serve "$(grep 'req/s' "$LOGS/check-serve.log" | tail -n 1)"
  else
    sed 's/^/   | /' "$LOGS/check-serve.log"; tail -n 15 "$LOGS/serve.log" | sed 's/^/   | /'
    fail correctness serve "$(tail -n 1 "$LOGS/check-serve.log") (logs: $LOGS/serve.log)"
  fi
  kill -TERM "$SERVER" 2>/dev/null
  for _ in $(seq 60); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$SERVER" 2>/dev/null; then
    kill -KILL "$SERVER"; fail correctness serve-stop "still running 30 s after SIGTERM"
  else
    wait "$SERVER"; rc=$?
    # uvicorn re-raises SIGTERM after a clean shutdown: 143 is a clean stop
    if (( rc == 0 || rc == 143 )); then pass correctness serve-stop "stopped cleanly (exit $rc) after $((SECONDS - t0)) s"
    else fail correctness serve-stop "exit $rc after SIGTERM (log: $LOGS/serve.log)"; fi
  fi
else
  note SKIP correctness serve "needs the LoRA and full predictions and 60 s of budget"
fi

# ---- 6. a long input: --fast auto compiles (bf16-compile / fp16-compile on the GPU) -------------------
if [ "$N_LONG" -gt 0 ] && [ -s "$WORK/p-auto.jsonl" ]; then
  t0=$SECONDS
  if run correctness predict-long 200 150 -- "${TS[@]}" predict "$WORK/full" --input "$WORK/long.txt" --no-progress \
      --all-scores --overwrite --device "$DEVICE" --output "$WORK/p-long.jsonl"; then
    grep -h "execution path" "$LOGS/predict-long.log" | sed 's/^/   /'
    if "${CHK[@]}" long "$WORK/p-long.jsonl" "$N_LONG" "$WORK/p-auto.jsonl" "$((SECONDS - t0))" \
        >"$LOGS/check-long.log" 2>&1; then pass correctness predict-long "$(tail -n 1 "$LOGS/check-long.log")"
    else fail correctness predict-long "$(tail -n 1 "$LOGS/check-long.log")"; fi
  fi
fi

# ---- 7. measurements ------------------------------------------------------------------------------------
if [ -f "$WORK/full/run.json" ]; then
  TAIL=22 run measurement bench-infer 240 90 -- "${TS[@]}" bench infer --model "$WORK/full" --device "$DEVICE" \
    "${BENCH_INFER[@]}" --markdown "$WORK/bench-infer.md" \
    && pass measurement bench-infer "$(grep -h 'default path (--fast auto) for this input' "$LOGS/bench-infer.log" | head -n 1)"
fi
if "${TS[@]}" bench train --help >"$LOGS/bench-train-help.log" 2>&1; then
  BT=(--device "$DEVICE")  # small budgets for the flags this build's `bench train` has
  grep -q -- '--samples' "$LOGS/bench-train-help.log" && BT+=(--samples "$([ "$DRY" = 1 ] && echo 64 || echo 1024)")
  grep -q -- '--rounds' "$LOGS/bench-train-help.log" && BT+=(--rounds 1)
  grep -q -- '--device' "$LOGS/bench-train-help.log" || BT=("${BT[@]:2}")
  # shellcheck disable=SC2086  # GPU_CHECK_BENCH_TRAIN_ARGS is a list of words on purpose
  TAIL=22 run measurement bench-train 150 60 -- "${TS[@]}" bench train "${BT[@]}" ${GPU_CHECK_BENCH_TRAIN_ARGS:-} \
    && pass measurement bench-train "$(tail -n 1 "$LOGS/bench-train.log")"
else
  fail measurement bench-train "this build has no 'tunesmith bench train'"
fi

# ---- summary ----------------------------------------------------------------------------------------------
echo
echo "== summary: device $DEVICE, auto precision $AUTO, $SECONDS s of ${BUDGET}s budget, logs in $LOGS"
printf '%s\n' "${SUMMARY[@]}"
if (( CORRECT_FAILED )); then echo "gpu-check: FAILED (a correctness step failed)"; exit 1; fi
(( MEASURE_FAILED )) && echo "gpu-check: correctness OK; a measurement step failed (see above)"
echo "gpu-check: OK"
exit 0
