"""The measurements `tunesmith advise` may cite: one record per measurement, as data.

Every rule advise applies names the records behind it (by id), or says "no measurement" when it is
a hand-set rule. A record says what was measured, the numbers, the command that measured them and
the doc section where they are written up; its `rows` are the same results in a form advise
computes with (which method was best at which data size, did augmentation help).

Format (add a measurement = append one `Evidence(...)` to EVIDENCE; no code changes):

    Evidence(
        id="lr-sweep-mr-2000",                  # stable, short, unique: what rules and output cite
        what="learning-rate sweep per method ...",   # one sentence: what was measured, on what
        numbers="full 0.81 at 5e-5, lora 0.79 at 1e-3, ...",   # the figures as the doc prints them
        command="tunesmith compare --methods ... --sweep lr=...",  # exactly what produced them
        doc="docs/strategy.md#tunesmith-compare",  # file#section where they are documented
        rows=(Quality("full", "minilm", "movie-reviews", 2000, "test accuracy", 0.81, lr=5e-5, seeds=3),
              ...),
    )

A `Quality` row is one measured configuration: method, base model, data set, number of training
examples, metric and its value (the mean over `seeds` seeds when seeds > 1, or one row per seed:
rows with the same method, model, data, size, lr and condition are averaged). `condition` is ""
for a plain run, or the augmentation measured ("eda", "mixup"...) against the plain run of the same
study. `task` is the finetune task ("classification", "token-classification"). Optional speed:
`seconds_per_step` at `batch` x `seq` on `device`, for the model choice (e.g. mpnet vs minilm).

What advise does with rows (strategy/advise.py): the method is the best measured one at the
nearest measured data size where at least two methods were compared (within NEAR_FACTOR of the
situation's size), among those that fit memory, tasks and storage; its learning rate is the lr of
its best row. Augmentation is recommended only where a row measured it above the plain run at the
nearest size. Model choice: the measured quality of each candidate model at the nearest size, or
"no measurement yet" where there is none.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import TunesmithError


@dataclass(frozen=True)
class Quality:
    """One measured configuration's result (see the module docstring)."""

    method: str
    model: str
    data: str
    train_examples: int
    metric: str
    value: float
    lr: float | None = None
    seeds: int = 1
    std: float | None = None
    condition: str = ""  # "" = no augmentation; else the augmentation measured
    task: str = "classification"
    seconds_per_step: float | None = None
    batch: int | None = None
    seq: int | None = None
    device: str = ""


@dataclass(frozen=True)
class Evidence:
    """One measurement: what, the numbers, the command, where it is documented, and its rows."""

    id: str
    what: str
    numbers: str
    command: str
    doc: str
    rows: tuple[Quality, ...] = ()

    def cite(self) -> str:
        """One line for the printed advice: id, numbers, where documented."""
        return f"{self.id}: {self.what}: {self.numbers} ({self.doc})"


_COMPARE = ("OMP_NUM_THREADS=1 tunesmith compare --methods {m} --data movie-reviews --max-train 2000 "
            "--max-eval 300 --epochs 1 --max-length 64 --batch-size 32 --train.eval_every=32")
_BUDGET = "minilm, movie-reviews, 2,000 training examples, 1 epoch (63 steps of 32), max_length 64, seed 42"


def _mr(method: str, value: float, lr: float, **kw) -> Quality:
    return Quality(method, "minilm", "movie-reviews", 2000, "test accuracy", value, lr=lr, **kw)


EVIDENCE: tuple[Evidence, ...] = (
    Evidence(
        "compare-mr-2000",
        f"seven methods at their default lr, same split and budget ({_BUDGET}), one seed",
        "test accuracy full 0.650 (lr 2e-5), ia3 0.623 (3e-3), prompt 0.597 (3e-2), head 0.593 (1e-3), "
        "lora 0.580 (3e-4), dora 0.580 (3e-4), ptuning 0.500 (3e-3)",
        _COMPARE.format(m="full,lora,head,dora,ia3,prompt,ptuning"),
        "docs/strategy.md#tunesmith-compare, README.md#choosing-a-strategy",
        rows=()),  # superseded by lr-sweep-mr-2000 (the old default lrs)
    Evidence(
        "compare-textbook-mr-2000",
        f"the textbook's four methods at their default lr, same split and budget ({_BUDGET}), one seed",
        "test accuracy adapter (Houlsby, 64) 0.743 (lr 1e-3), prefix 0.677 (1e-2), full 0.650 (2e-5), "
        "lora 0.580 (3e-4)",
        _COMPARE.format(m="full,adapter,lora,prefix"),
        "docs/strategy.md#tunesmith-compare, README.md#choosing-a-strategy",
        rows=()),  # superseded by lr-sweep-mr-2000 (the old default lrs)
    Evidence(
        "lora-stalled-3e-4",
        "LoRA and DoRA at lr 3e-4 in compare-mr-2000 barely left their start",
        "training loss stayed at 0.692 (= ln 2), largest LoRA B entry 0.007 after training; "
        "predictions came almost only from the trained head",
        _COMPARE.format(m="lora,dora"),
        "docs/strategy.md#tunesmith-compare"),
    Evidence(
        "augment-200",
        "augmentation with 200 labelled examples: full fine-tuning of minilm at lr 2e-4, 40 steps of 16, "
        "movie-reviews, 3 seeds, paired by seed",
        "test accuracy none 0.740, eda 0.728 (-0.012), synonym 0.705 (-0.035), mixup 0.697 (-0.043); "
        "seed spread (std) 0.015 without augmentation",
        "python -m tunesmith.strategy.augstudy --out runs/augstudy --seeds 1,2,3 --steps 40 --max-length 48 "
        "--max-eval 200 --lr 0.0002 --conditions none,eda,mixup,synonym",
        "docs/strategy.md#measured-augmentation-with-200-labelled-examples",
        rows=tuple(Quality("full", "minilm", "movie-reviews", 200, "test accuracy", v, lr=2e-4, seeds=3, std=s,
                           condition=c)
                   for c, v, s in (("", 0.7400, 0.0150), ("eda", 0.7283, 0.0333), ("mixup", 0.6967, 0.0603),
                                   ("synonym", 0.7050, 0.0589)))),
    Evidence(
        "demo-mr-full",
        "the demo: full fine-tuning of minilm on the movie-reviews training split (8,454 sentences), "
        "lr 5e-5, batch 32, max_length 64, 4-minute budget (1.7 and 1.9 epochs), two runs",
        "test accuracy 0.8458 and 0.8505 (2-core CPU); the time budget held: planned/actual 230/234 s and "
        "230/225 s (the run plans its steps from its own measured speed)",
        "make demo; tunesmith demo",
        "README.md#the-demo",
        rows=(Quality("full", "minilm", "movie-reviews", 8454, "test accuracy", 0.8458, lr=5e-5),
              Quality("full", "minilm", "movie-reviews", 8454, "test accuracy", 0.8505, lr=5e-5))),
    Evidence(
        "ner-news-1600",
        "minilm on the silver news-ner set (1,600 training sentences; agreement with spaCy, not gold), "
        "2 epochs, batch 16",
        "entity F1 full 0.626 (lr 3e-4), 0.421 (1e-4); lora 0.462 (2e-3), 0.375 (1e-3)",
        "tunesmith datasets build news-ner --size 2000 --seed 0 --out /tmp/nn2000; OMP_NUM_THREADS=1 tunesmith "
        "finetune --task token-classification --model minilm --data /tmp/nn2000 --method full --epochs 2 "
        "--batch-size 16 --lr 3e-4 --max-length 128 --train.eval_batch_size=64 (and --method lora --lr 2e-3)",
        "docs/ner-and-generation.md#measured-minilm-on-news-ner-silver-agreement-with-spacy-not-gold-accuracy",
        rows=tuple(Quality(m, "minilm", "news-ner", 1600, "entity F1", v, lr=lr, task="token-classification")
                   for m, v, lr in (("full", 0.626, 3e-4), ("full", 0.421, 1e-4), ("lora", 0.462, 2e-3),
                                    ("lora", 0.375, 1e-3)))),
    Evidence(
        "lr-sweep-mr-2000",
        f"learning-rate sweep per method, each at the lr with the best validation accuracy of 3-5 tried "
        f"({_BUDGET}), test accuracy averaged over training seeds 1 and 42",
        "full 0.772 (lr 1e-4), adapter 0.772 (3e-3), lora 0.763 (3e-3), dora 0.763 (3e-3), ia3 0.756 (3e-2), "
        "prefix 0.685 (3e-2), head 0.615 (1e-1), ptuning 0.611 (3e-2), prompt 0.561 (3e-1)",
        "OUT=runs/sweep SEEDS=1 bash scripts/sweep-defaults.sh grid seeds; python scripts/sweep_table.py runs/sweep",
        "docs/quality.md#defaults-that-learn-the-learning-rate-sweep",
        rows=()),  # superseded by seeds-mr-2000 (the same defaults, 3 seeds, after the batch-order fix)
    Evidence(
        "seeds-mr-2000",
        f"every method at its registry default lr (chosen by lr-sweep-mr-2000), {_BUDGET.replace(', seed 42', '')}, "
        "whole test split (1,057), training seeds 1, 2, 42; head, lora and the prompt methods re-measured with "
        "mean pooling (fp32 machine; lora at lr 3e-3; the prompt methods with their head at 1e-2; prompt and ptuning "
        "re-measured 2026-12-07 on peft 0.22, prompt tuning starting from the label names; ptuning re-measured "
        "2026-12-08 starting from the label names at lr 1e-3)",
        "mean test accuracy full 0.770 (lr 1e-4), lora 0.774 (3e-3, mean pooling), dora 0.752 (3e-3), adapter 0.752 (3e-3), "
        "ia3 0.750 (3e-2), head 0.727 (1e-2), prompt 0.725 (3e-2, label start), prefix 0.724 (3e-2), ptuning 0.721 (1e-3, label start)",
        "OUT=runs/sweep bash scripts/sweep-defaults.sh seeds; python scripts/sweep_table.py runs/sweep "
        "(head: tunesmith compare --methods full,head,prefix --data movie-reviews --max-train 2000 --epochs 1 "
        "--max-length 64 --batch-size 32 --train.eval_every=32 --seed S; lora: the same with --methods lora; "
        "the prompt methods: the same with --methods prompt,ptuning,prefix; prompt and ptuning on 2026-12-07 "
        "with --train.precision=fp32, docs/strategy.md sections 'Prompt tuning starts from the label names' and "
        "'P-tuning starts from the label names too')",
        "docs/strategy.md#defaults-that-learn-the-sweep-behind-the-per-method-defaults",
        rows=tuple(Quality(m, "minilm", "movie-reviews", 2000, "test accuracy", v, lr=lr, seeds=3, std=sd)
                   for m, v, lr, sd in (("full", 0.7701, 1e-4, 0.0090), ("lora", 0.7739, 3e-3, 0.0108),
                                        ("dora", 0.7521, 3e-3, 0.0010), ("adapter", 0.7521, 3e-3, 0.0218),
                                        ("ia3", 0.7499, 3e-2, 0.0242), ("head", 0.7266, 1e-2, 0.0133),
                                        ("prefix", 0.7241, 3e-2, 0.0235), ("ptuning", 0.7206, 1e-3, 0.0092),
                                        ("prompt", 0.7250, 3e-2, 0.0024)))),
    Evidence(
        "mpnet-mr-full",
        "mpnet (all-mpnet-base-v2) full fine-tuning on the movie-reviews training split (8,454 sentences), "
        "lr 3e-5, batch 32, max_length 64, 1 epoch, seed 42, 2-core CPU under load",
        "test accuracy 0.9167 (validation 0.9186), 852 s of training; minilm 3 epochs same split: 0.8467",
        "tunesmith finetune --model mpnet --data movie-reviews --method full --lr 3e-5 --max-length 64 "
        "--batch-size 32 --epochs 1 --train.eval_every 132",
        "docs/quality.md#measured-mpnet-on-movie-reviews",
        rows=(Quality("full", "mpnet", "movie-reviews", 8454, "test accuracy", 0.9167, lr=3e-5),
              Quality("full", "minilm", "movie-reviews", 8454, "test accuracy", 0.8467, lr=5e-5))),
    Evidence(
        "bench-train-cpu",
        "training throughput, tunesmith default path, minilm, 1,024 movie-review sentences, 2-core CPU, fp32",
        "full 92.0 samples/s, LoRA 124.1 samples/s (1.35x)",
        "tunesmith bench train --samples 1024 --rounds 2 --arms a,b,c,c-plain,c-bf16,b-lora,c-lora "
        "--to-accuracy 0.83",
        "README.md#training-speed"),
)


def by_id(evidence: tuple[Evidence, ...] = EVIDENCE) -> dict[str, Evidence]:
    """The records by id; a duplicate id is an error (a citation must name one measurement)."""
    out: dict[str, Evidence] = {}
    for e in evidence:
        if e.id in out:
            raise TunesmithError(f"evidence id '{e.id}' is used twice; ids must be unique")
        out[e.id] = e
    return out


def rows(evidence: tuple[Evidence, ...] = EVIDENCE) -> list[tuple[str, Quality]]:
    """Every Quality row with the id of the record it belongs to."""
    return [(e.id, r) for e in evidence for r in e.rows]
