"""Any Hugging Face sequence-classification model, loaded offline.

``classifier.model`` is a local directory or a model id already in the local
Hugging Face cache; the hub is never contacted.  ``classifier.label_map`` maps
the model's labels onto negative/neutral/positive; ``unhappy_score`` is the
probability of the labels mapped to ``negative``.  Categories use keyword and
description prototypes over the packaged MiniLM (no fine-tuned layers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.base import Label, Prediction
from classifiers.circumstances import detect_circumstances
from classifiers.settings import ClassifierSettings
from classifiers.text import normalize
from listener.errors import ClassifierError

_ALIASES: dict[str, Label] = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}


def resolve_label_map(id2label: dict[int, str], label_map: dict[str, str]) -> list[Label]:
    """For each class index, its negative/neutral/positive label."""
    lowered = {k.lower(): v for k, v in label_map.items()}
    out: list[Label] = []
    for i in sorted(id2label):
        name = str(id2label[i])
        mapped = lowered.get(name.lower()) or _ALIASES.get(name.lower())
        if mapped is None:
            raise ClassifierError(
                f"model label {name!r} has no mapping; set classifier.label_map, e.g. "
                f"{{{name!r}: negative}} (labels: {', '.join(map(str, id2label.values()))})"
            )
        out.append(mapped)  # type: ignore[arg-type]
    return out


class HFClassifier:
    """A transformers sequence-classification model behind the Classifier protocol."""

    def __init__(self, settings: ClassifierSettings) -> None:
        if not settings.model:
            raise ClassifierError("classifier.kind is 'hf' but classifier.model is not set")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.settings = settings
        name = settings.model
        local = Path(name).expanduser()
        source = str(local) if local.exists() else name
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=True
            )
        except Exception as exc:
            if local.exists():
                msg = f"cannot load model from {local}: {exc}"
            else:
                msg = (
                    f"model {name!r} is not in the local Hugging Face cache and hub access is "
                    "off; download it first (huggingface-cli download "
                    f"{name}) or set classifier.model to a local path"
                )
            raise ClassifierError(msg) from exc
        model.eval()
        model.to(settings.device)
        if settings.quantize and settings.device == "cpu":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, dtype=torch.qint8
                )
        self.model = model
        self.labels = resolve_label_map(
            {int(k): v for k, v in model.config.id2label.items()}, dict(settings.label_map)
        )
        self.version = f"hf:{name}" + ("-int8" if settings.quantize else "")
        self._categories: Any = None

    def _category_model(self):  # type: ignore[no-untyped-def]
        if self._categories is None:
            from classifiers.categories import CategoryModel
            from classifiers.encoder import MiniLMEncoder

            enc = MiniLMEncoder(
                None,
                quantize=self.settings.quantize,
                backend="onnx" if self.settings.device == "cpu" else "torch",
                onnx_dir=self.settings.models_path / "onnx",
            )
            self._topic = lambda texts: enc.encode(texts)[1]
            self._categories = CategoryModel(
                self.settings.categories, self._topic, self.settings.fallback_category
            )
        return self._categories

    def _probs(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        bs = self.settings.batch_size
        with torch.inference_mode():
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    truncation=True,
                    max_length=self.settings.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.settings.device)
                logits = self.model(**enc).logits.float()
                out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        raw = [t or "" for t in texts]
        if not raw:
            return []
        probs = self._probs([normalize(t) for t in raw])
        agg = np.zeros((len(raw), 3), dtype=np.float32)
        for j, lab in enumerate(self.labels):
            agg[:, ("negative", "neutral", "positive").index(lab)] += probs[:, j]
        unhappy = agg[:, 0] >= self.settings.threshold
        cats_model = self._category_model()
        positive = [not unhappy[i] and int(np.argmax(agg[i])) == 2 for i in range(len(raw))]
        cats = cats_model.assign(raw, self._topic(raw), unhappy.tolist(), None, positive)
        out = []
        for i, text in enumerate(raw):
            label: Label = ("negative", "neutral", "positive")[int(np.argmax(agg[i]))]  # type: ignore[assignment]
            if unhappy[i]:
                label = "negative"
            out.append(
                Prediction(
                    label=label,
                    probabilities={
                        "negative": float(agg[i, 0]),
                        "neutral": float(agg[i, 1]),
                        "positive": float(agg[i, 2]),
                    },
                    unhappy_score=float(agg[i, 0]),
                    unhappy=bool(unhappy[i]),
                    category=cats[i][0],
                    category_score=cats[i][1],
                    circumstances=detect_circumstances(text),
                    model_version=self.version,
                )
            )
        return out
