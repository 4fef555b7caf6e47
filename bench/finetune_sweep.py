# ruff: noqa: E402
"""GPU sweep used to choose the fine-tuning recipe (see docs/model-card.md).

Usage (on a machine with the data under DATA):
    python bench/finetune_sweep.py DATA_DIR BASE_DIR OUT_DIR
Trains a few recipes, and for each reports unhappy F1/AUC of a logistic head
(on pooled embeddings + VADER features) on the airline dev set.
"""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from transformers import AutoTokenizer, BertModel
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The GPU box may lack pydantic: import the submodules without the package __init__.
for _pkg in ("classifiers", "listener"):
    if _pkg not in sys.modules:
        _m = types.ModuleType(_pkg)
        _m.__path__ = [str(ROOT / _pkg)]
        sys.modules[_pkg] = _m
from classifiers.data import load_csv, load_vader
from classifiers.finetune import finetune
from classifiers.synthetic import generate
from classifiers.text import normalize

data, base, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
vader = load_vader(data / "vader")
synth = generate()
dev = load_csv(data / "Tweets-dev.csv")
dev_y = np.array([r.label == "negative" for r in dev])
tok = AutoTokenizer.from_pretrained(str(base))
an = SentimentIntensityAnalyzer()


def lex(texts):
    return np.array([[s["compound"], s["neg"], s["pos"]] for s in map(an.polarity_scores, texts)])


@torch.no_grad()
def embed(bert, texts, bs=512):
    bert.eval()
    outs = []
    for i in range(0, len(texts), bs):
        enc = tok(
            [normalize(t) for t in texts[i : i + bs]],
            truncation=True,
            max_length=128,
            padding=True,
            return_tensors="pt",
        ).to("cuda")
        h = bert(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        outs.append(((h * m).sum(1) / m.sum(1)).float().cpu().numpy())
    return np.concatenate(outs)


def evaluate(state, train):
    bert = BertModel.from_pretrained(str(base), dtype=torch.float32, add_pooling_layer=False)
    if state:
        bert.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    bert.to("cuda")
    tr_texts = [e.text for e in train]
    Xtr = np.hstack([embed(bert, tr_texts), lex(tr_texts)])
    ytr = np.array([e.unhappy for e in train])
    dtexts = [r.text for r in dev]
    Xd = np.hstack([embed(bert, dtexts), lex(dtexts)])
    res = {}
    for C in (0.1, 1.0):
        clf = LogisticRegression(C=C, max_iter=2000).fit(Xtr, ytr)
        p = clf.predict_proba(Xd)[:, 1]
        res[f"C{C}"] = {
            "f1@.5": round(f1_score(dev_y, p >= 0.5), 4),
            "best_f1": round(max(f1_score(dev_y, p >= t) for t in np.arange(0.1, 0.9, 0.05)), 4),
            "auc": round(roc_auc_score(dev_y, p), 4),
            "pos_rate": round(float((p >= 0.5).mean()), 3),
        }
    return res


configs = [
    ("frozen", dict(top_layers=0), True),
    ("k2_lr1e-4_synth", dict(top_layers=2, lr=1e-4), True),
    ("k2_lr1e-4_nosynth", dict(top_layers=2, lr=1e-4), False),
    ("k1_lr1e-4_synth", dict(top_layers=1, lr=1e-4), True),
    ("k2_lr5e-5_synth_e4", dict(top_layers=2, lr=5e-5, epochs=4), True),
]
only = sys.argv[4].split(",") if len(sys.argv) > 4 else None
results = {}
for name, kw, use_synth in configs:
    if only and name not in only:
        continue
    t = time.time()
    train = vader + (synth if use_synth else [])
    state = finetune(train, base_dir=base, device="cuda", **kw) if kw["top_layers"] else {}
    if state:
        save_file(state, str(out / f"{name}.safetensors"))
    results[name] = evaluate(state, train)
    results[name]["secs"] = round(time.time() - t, 1)
    print(name, json.dumps(results[name]), flush=True)
(out / "sweep.json").write_text(json.dumps(results, indent=1))
