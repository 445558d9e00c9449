"""Validation pass in the split's order (stock Trainer) vs longest first (TunesmithTrainer), side by side in
one process: minilm classifier, 1,057 movie-review sentences, batch 128, best of 3 alternated passes; prints the ratio.

    python scripts/bench_eval_order.py
"""
import time, random, torch
from datasets import Dataset
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
from tunesmith.models import load_for_task, resolve
from tunesmith.data.builtin import movie_reviews
from tunesmith.trainer import TunesmithTrainer
ref = resolve("minilm")
model, _ = load_for_task(ref, "classification", ["negative", "positive"])
tok = AutoTokenizer.from_pretrained(ref.path)
rows, _ = movie_reviews()
random.Random(0).shuffle(rows)
rows = rows[:1057]
enc = tok([r["text"] for r in rows], truncation=True, max_length=64)
ds = Dataset.from_dict({**enc, "labels": [int(r["label"] == "positive") if isinstance(r["label"], str) else int(r["label"]) for r in rows]})
args = TrainingArguments(output_dir="/tmp/x", per_device_eval_batch_size=128, report_to="none", use_cpu=True, disable_tqdm=True)
kw = dict(model=model, args=args, eval_dataset=ds, data_collator=DataCollatorWithPadding(tok))
t = {"stock": Trainer(**kw), "longest-first": TunesmithTrainer(**kw)}
res = {k: [] for k in t}
for rep in range(3):
    for k, tr in t.items():
        s = time.perf_counter(); tr.evaluate(); res[k].append(time.perf_counter() - s)
b = {k: min(v) for k, v in res.items()}
print({k: [round(x, 2) for x in v] for k, v in res.items()}, "best-of-3 ratio stock/ours = %.2f" % (b["stock"] / b["longest-first"]))
