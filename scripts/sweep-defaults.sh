#!/usr/bin/env bash
# The learning-rate sweep behind the per-method defaults (docs/strategy.md, "Defaults that learn").
#   phase grid:  each method at 3 learning rates, seed 42, movie-reviews at the compare budget
#   phase seeds: the chosen defaults (the registry's, i.e. what `tunesmith methods` prints) at seeds 1, 2, 42
#                on movie-reviews (SEEDS) and on sms-spam (SPAM_SEEDS) at the compare budget
#   phase ner:   token classification on the silver news-ner set, 3 learning rates per method, seeds 42, 1, 2 (NER_SEEDS)
#   phase full:  the whole movie-reviews training split, 1 epoch, chosen defaults
# Usage: scripts/sweep-defaults.sh [grid|seeds|ner|full ...] (default: all); OUT=runs/sweep
# Then: python scripts/sweep_table.py runs/sweep
set -euo pipefail
OUT=${OUT:-runs/sweep}
TS=${TS:-tunesmith}
BUDGET=(--max-train 2000 --epochs 1 --max-length 64 --batch-size 32 --train.eval_every=32)
# 3 rates around each old default, plus one or two more where the best was at the grid's edge
declare -A GRID=(
  [full]=5e-5,1e-4,2e-4 [lora]=5e-4,1e-3,3e-3,1e-2 [dora]=5e-4,1e-3,3e-3,1e-2 [ia3]=3e-3,1e-2,3e-2,1e-1
  [head]=1e-3,3e-3,1e-2,3e-2,1e-1 [prompt]=3e-2,1e-1,3e-1 [ptuning]=3e-3,1e-2,3e-2,1e-1 [prefix]=1e-2,3e-2,1e-1
  [adapter]=1e-3,3e-3,1e-2)
METHODS=(full lora dora ia3 head prompt ptuning prefix adapter)
NER_METHODS=(full lora)
declare -A NER_GRID=([full]=1e-4,3e-4,1e-3 [lora]=3e-3,1e-2,3e-2)  # 1e-3 / 3e-2: the first grid's best was at its edge

phase_grid() {
  for m in "${METHODS[@]}"; do
    $TS compare --methods "$m" --data movie-reviews "${BUDGET[@]}" --sweep "lr=${GRID[$m]}" \
      --train.early_stopping_patience=0 --out "$OUT/grid/movie-reviews/$m"
  done
}

phase_seeds() {
  local methods; methods=$(IFS=,; echo "${METHODS[*]}")
  for seed in ${SEEDS:-1 2 42}; do
    $TS compare --methods "$methods" --data movie-reviews "${BUDGET[@]}" --seed "$seed" \
      --out "$OUT/seeds/movie-reviews/seed$seed"
  done
  for seed in ${SPAM_SEEDS:-1 2 42}; do
    $TS compare --methods "$methods" --data sms-spam "${BUDGET[@]}" --seed "$seed" \
      --out "$OUT/seeds/sms-spam/seed$seed"
  done
}

phase_ner() {
  [ -d "$OUT/news-ner" ] || $TS datasets build news-ner --size 2000 --seed 0 --out "$OUT/news-ner"
  for seed in ${NER_SEEDS:-42 1 2}; do
    for m in "${NER_METHODS[@]}"; do
      $TS compare --methods "$m" --model.task=token-classification --data "$OUT/news-ner" --epochs 1 --max-length 64 \
        --batch-size 32 --sweep "lr=${NER_GRID[$m]}" --train.early_stopping_patience=0 --seed "$seed" \
        --out "$OUT/ner/seed$seed/$m"
    done
  done
}

phase_full() {
  $TS compare --methods full,lora,ia3,adapter --data movie-reviews --epochs 1 --max-length 64 --batch-size 32 \
    --out "$OUT/full/movie-reviews"
}

phases=("$@"); [ ${#phases[@]} -gt 0 ] || phases=(grid seeds ner full)
for p in "${phases[@]}"; do "phase_$p"; done
