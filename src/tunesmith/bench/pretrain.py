"""MLM training throughput: our path vs transformers' `run_mlm.py` done the padded way.

Baseline (what `run_mlm.py --line_by_line --pad_to_max_length` does): one example per sentence,
every example padded to max_seq_length, random batches, `DataCollatorForLanguageModeling`.
Ours: the same sentences, batches grouped by length (transformers' get_length_grouped_indices, what
the Trainer's LengthGroupedSampler uses) and padded only to the longest in the batch by our MLMCollator,
first with the stock dense MLM head, then with the sparse head `tunesmith pretrain` trains with
(vocabulary projection only at the selected positions, pretrain/sparse.py); and the sentences
packed into full blocks (`--objective.group_texts`).
All arms train the same model copy shape in one process; batches are interleaved (baseline,
ours, packed, baseline, ...) so machine load hits every arm alike. Tokens/s counts real
(non-padding) tokens, identical in every arm, so the ratio is the time ratio.
"""
from __future__ import annotations

import copy
import random
import time



def add_arguments(p) -> None:
    p.add_argument("--model", default="minilm", help="masked LM to train (built-in, run, path) [minilm]")
    p.add_argument("--corpus", default="news", help="corpus whose sentences are used [news]")
    p.add_argument("--sentences", type=int, default=256, help="sentences in the slice [256]")
    p.add_argument("--batch-size", type=int, default=16, help="examples per step [16]")
    p.add_argument("--max-length", type=int, default=128, help="max_seq_length of the baseline [128]")
    p.add_argument("--seed", type=int, default=0)


def corpus_slice(source: str, n: int, seed: int) -> list[str]:
    from ..pretrain.config import CorpusConfig
    from ..pretrain.corpus import load_corpus, split_sentences

    docs = load_corpus(CorpusConfig(source=source, seed=seed)).train
    sents = [s for d in docs[: max(50, n // 5)] for s in split_sentences(d)]
    random.Random(seed).shuffle(sents)
    return sents[:n]


def batches(sents, tok, args):
    """Three lists of collated batches over the same sentences: baseline, ours, packed."""
    import torch
    from transformers import DataCollatorForLanguageModeling
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from ..pretrain.collators import MaskingSpec, MLMCollator
    from ..pretrain.examples import mlm_examples, pack_blocks

    ex = mlm_examples(tok, sents, args.max_length)
    bs, g = args.batch_size, torch.Generator().manual_seed(args.seed)
    hf = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=args.seed)
    padded = tok(sents, truncation=True, max_length=args.max_length, padding="max_length")
    order = torch.randperm(len(sents), generator=g).tolist()
    base = [hf([{"input_ids": padded["input_ids"][i], "attention_mask": padded["attention_mask"][i]}
                 for i in order[k:k + bs]]) for k in range(0, len(order), bs)]
    ours_collate = MLMCollator.from_tokenizer(tok, MaskingSpec(), g)
    # megabatches of 50 x batch, as the Trainer's LengthGroupedSampler uses on any corpus of
    # >= 200 batches (on a small slice it would shrink them and group less)
    grouped = get_length_grouped_indices([e["length"] for e in ex], bs, mega_batch_mult=50, generator=g)
    strip = lambda e: {"input_ids": e["input_ids"], "word_ids": e["word_ids"]}
    ours = [ours_collate([strip(ex[i]) for i in grouped[k:k + bs]]) for k in range(0, len(grouped), bs)]
    blocks = pack_blocks(ex, args.max_length)
    packed = [ours_collate([strip(b) for b in blocks[k:k + bs]]) for k in range(0, len(blocks), bs)]
    return {"baseline (pad to max_length)": base, "grouped, dynamic padding": ours,
            "grouped + sparse MLM head (pretrain)": ours, "packed blocks + sparse MLM head": packed}


def collate_seconds(sents, tok, args, reps: int = 3) -> tuple[float, float]:
    """Seconds to collate every batch (dynamic padding + masking): transformers' collator vs ours."""
    import torch
    from transformers import DataCollatorForLanguageModeling

    from ..pretrain.collators import MaskingSpec, MLMCollator
    from ..pretrain.examples import mlm_examples

    ex = mlm_examples(tok, sents, args.max_length)
    chunks = [[{"input_ids": e["input_ids"]} for e in ex[k:k + args.batch_size]]
              for k in range(0, len(ex), args.batch_size)]
    hf = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=args.seed)
    ours = MLMCollator.from_tokenizer(tok, MaskingSpec(), torch.Generator().manual_seed(args.seed))
    out = []
    for collate in (hf, ours):
        t0 = time.perf_counter()
        for _ in range(reps):
            for c in chunks:
                collate(c)
        out.append((time.perf_counter() - t0) / reps)
    return out[0], out[1]


def train_step(model, opt, batch, sparse: bool) -> None:
    from ..pretrain.sparse import sparse_mlm_loss

    loss = sparse_mlm_loss(model, batch) if sparse else model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def run(args) -> int:
    import torch
    from ..mlm_cache import load_masked_lm

    model, tok, _ = load_masked_lm(args.model)
    sents = corpus_slice(args.corpus, args.sentences, args.seed)
    arms = batches(sents, tok, args)
    models = {name: copy.deepcopy(model).train() for name in arms}
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-5) for name, m in models.items()}
    seconds = {name: 0.0 for name in arms}
    real = {name: sum(int(b["attention_mask"].sum()) for b in bs) for name, bs in arms.items()}
    computed = {name: sum(b["input_ids"].numel() for b in bs) for name, bs in arms.items()}
    for name in arms:  # warm-up step per arm (allocations, first-call overheads), not timed
        train_step(models[name], opts[name], arms[name][0], "sparse" in name)
    for k in range(max(len(b) for b in arms.values())):
        for name, bs in arms.items():
            if k < len(bs):
                t0 = time.perf_counter()
                train_step(models[name], opts[name], bs[k], "sparse" in name)
                seconds[name] += time.perf_counter() - t0
    print(f"MLM training throughput on {len(sents)} {args.corpus} sentences, model {args.model}, "
          f"batch {args.batch_size}, max_length {args.max_length}, torch threads {torch.get_num_threads()}")
    base = next(iter(arms))
    base_tps = real[base] / seconds[base]
    print(f"{'path':<40}{'batches':>8}{'real tok':>10}{'computed':>10}{'seconds':>9}{'tok/s':>9}{'ratio':>7}")
    for name in arms:
        tps = real[name] / seconds[name]
        print(f"{name:<40}{len(arms[name]):>8}{real[name]:>10}{computed[name]:>10}{seconds[name]:>9.2f}"
              f"{tps:>9.0f}{tps / base_tps:>6.2f}x")
    hf_s, our_s = collate_seconds(sents, tok, args)
    print(f"collation alone (all batches, dynamic padding + masking): transformers DataCollatorForLanguageModeling "
          f"{hf_s * 1000:.1f} ms, ours {our_s * 1000:.1f} ms ({hf_s / our_s:.2f}x)")
    print("real tok: non-padding tokens trained on; computed: positions the model ran on (padding included). "
          "Packed blocks drop the last partial block, so their real-token count is slightly smaller.")
    return 0
