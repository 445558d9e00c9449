"""Train an encoder's top layers and its MLM head on cached lower-layer states (fill-mask for an
encoder that ships without an MLM head, e.g. the built-in minilm).

Why not the head alone: all-MiniLM-L6-v2 was trained for sentence embeddings, so its last hidden
states no longer say which word stood at a position; a head on frozen features reached only top-1
0.067 / top-5 0.158 on held-out news masks and answered "the , ." to everything. Letting the
encoder layers adapt too gives them back the token identity (on a dev slice: top 1 or 2 layers
top-1 0.05-0.06, every layer 0.16; mlm_cache.py trains every layer by default). It stays cheap: the frozen lower
layers run once per sentence (no_grad), their output at the first trained layer is cached, and each
step runs only the trained layers plus the vocabulary projection at the masked positions (the
decoder stays tied to the frozen word embeddings). Same numbers as the whole model: the top-layer
forward on cached states equals the full forward (tests/test_mlm_head.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .heads import HEAD_PARAMS, head_module


def encoder_layers(model) -> torch.nn.ModuleList:
    """The transformer layers of a BERT-family masked LM (model.<prefix>.encoder.layer)."""
    base = getattr(model, model.base_model_prefix)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: no encoder.layer list to train the top layers of")
    return layers


def _mask(model, hidden: torch.Tensor, attention: torch.Tensor):
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention)


def top_forward(model, k: int, hidden: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """Run the top k encoder layers on the states that enter them: (batch, seq, hidden)."""
    mask = _mask(model, hidden, attention)
    layers = encoder_layers(model)
    for layer in layers[len(layers) - k:]:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


@torch.no_grad()
def cached_states(model, tokenizer, sentences: list[str], k: int, rate: float = 0.15, max_length: int = 48,
                  batch: int = 64, seed: int = 0) -> list[dict]:
    """Mask `rate` of each sentence's ordinary tokens (at least one; always the mask token, as
    fill-mask shows it) and keep, per batch, the states entering the top k layers, the attention
    mask, the masked positions and the tokens that were there."""
    g = torch.Generator().manual_seed(seed)
    base = getattr(model, model.base_model_prefix)
    base.eval()
    n_layers = len(encoder_layers(model))
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # similar lengths: less padding
    out = []
    for i in range(0, len(order), batch):
        enc = tokenizer([sentences[j] for j in order[i:i + batch]], truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt", return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask").bool() | (enc["attention_mask"] == 0)
        pick = (torch.rand(enc["input_ids"].shape, generator=g) < rate) & ~special
        first = (~special).float().argmax(1)
        none = ~pick.any(1)
        pick[none, first[none]] = True
        targets = enc["input_ids"][pick]
        enc["input_ids"] = enc["input_ids"].masked_fill(pick, tokenizer.mask_token_id)
        states = base(**enc, output_hidden_states=True).hidden_states[n_layers - k]
        out.append({"hidden": states, "attention": enc["attention_mask"], "pick": pick, "targets": targets})
    return out


def trainable(model, k: int) -> tuple[list, list]:
    """(top-layer params, head params); everything else is frozen (the tied decoder included)."""
    for p in model.parameters():
        p.requires_grad = False
    top = encoder_layers(model)
    layers = [p for layer in top[len(top) - k:] for p in layer.parameters()]
    head = [p for n, p in head_module(model).predictions.named_parameters()
            if n.startswith(HEAD_PARAMS) and not n.startswith("decoder.weight")]
    for p in layers + head:
        p.requires_grad = True
    return layers, head


def train_top(model, batches: list[dict], k: int, epochs: int = 2, lr: float = 2e-4, head_lr: float = 2e-3,
              seed: int = 0, progress: bool = False) -> list[float]:
    """Train the top k layers (lr) and the head (head_lr) on cached states; mean loss per epoch."""
    from tqdm.auto import tqdm

    layers, head_params = trainable(model, k)
    opt = torch.optim.AdamW([{"params": layers, "lr": lr, "weight_decay": 0.01},
                             {"params": head_params, "lr": head_lr, "weight_decay": 0.0}])
    steps = max(1, epochs * len(batches))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps))
    g = torch.Generator().manual_seed(seed)
    head = head_module(model)
    model.train()
    losses = []
    bar = tqdm(total=steps, desc="fill-mask head", unit="step", disable=not progress)
    for _ in range(epochs):
        total, n = 0.0, 0
        for b in torch.randperm(len(batches), generator=g).tolist():
            x = batches[b]
            hidden = top_forward(model, k, x["hidden"], x["attention"])
            loss = F.cross_entropy(head(hidden[x["pick"]]), x["targets"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(x["targets"])
            n += len(x["targets"])
            bar.update(1)
            bar.set_postfix(loss=f"{total / max(1, n):.3f}")
        losses.append(total / max(1, n))
    bar.close()
    model.eval()
    for p in model.parameters():
        p.requires_grad = True
    return losses


@torch.no_grad()
def top_accuracy(model, batches: list[dict], k: int) -> dict:
    """Held-out masked-token top-1 / top-5 through the top k layers and the head."""
    model.eval()
    head = head_module(model)
    top1 = top5 = n = 0
    for x in batches:
        best = head(top_forward(model, k, x["hidden"], x["attention"])[x["pick"]]).topk(5, dim=-1).indices
        t = x["targets"][:, None]
        top1 += int((best[:, :1] == t).sum())
        top5 += int((best == t).any(1).sum())
        n += len(t)
    return {"top1": round(top1 / max(1, n), 4), "top5": round(top5 / max(1, n), 4), "n": n}


def trained_state(model, k: int) -> dict[str, torch.Tensor]:
    """What the cache keeps: the top k layers' and the head's weights (the decoder is the embeddings)."""
    n_layers = len(encoder_layers(model))
    keep = [f"{model.base_model_prefix}.encoder.layer.{i}." for i in range(n_layers - k, n_layers)]
    head = [f"cls.predictions.{p}" for p in HEAD_PARAMS]
    return {n: p.detach().clone().contiguous() for n, p in model.named_parameters()
            if n.startswith(tuple(keep)) or (n.startswith(tuple(head)) and "decoder.weight" not in n)}
