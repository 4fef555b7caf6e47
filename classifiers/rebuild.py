"""Rebuilding the committed base weights (``listener train --rebuild-base``).

1. fine-tune the top two MiniLM layers on VADER's rated sets plus our
   templated service posts (:mod:`classifiers.finetune`; a GPU makes this
   take a minute, a 2-core CPU most of an hour);
2. encode the same data with the resulting encoder (int8 when
   ``classifier.quantize``, as at inference) and fit the head
   (:func:`classifiers.training.train_head`, no corrections).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from classifiers.progress import Progress, no_progress
from classifiers.settings import ClassifierSettings

BASE_VERSION = "minilm-vader-v2"


def rebuild_base_weights(
    settings: ClassifierSettings,
    *,
    base_dir: Path | None = None,
    output: Path | None = None,
    device: str = "cpu",
    epochs: int = 3,
    top_layers: int = 2,
    lr: float = 1e-4,
    head_only: bool = False,
    base_limit: int | None = None,
    version: str = BASE_VERSION,
    log: Callable[[str], Any] = print,
    progress: Progress | None = None,
) -> Path:
    from classifiers.encoder import GRAPH_VERSION
    from classifiers.minilm import MiniLMClassifier, base_weights_dir
    from classifiers.training import cached_encode, train_head
    from listener.learning import _feature_tag, load_base_examples

    out = Path(output) if output else base_weights_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    examples = load_base_examples(base_dir, base_limit)
    if not head_only:
        from safetensors.torch import save_file

        from classifiers.finetune import finetune

        log(f"fine-tuning the top {top_layers} layers on {len(examples)} examples ({device})")
        state = finetune(
            examples, top_layers=top_layers, epochs=epochs, lr=lr, device=device, log=log
        )
        save_file(state, str(out / "encoder_top.safetensors"))
    settings = settings.model_copy(update={"weights": str(out)})
    if not (out / "head.npz").is_file():
        # a placeholder head so the classifier can load; replaced below
        import numpy as np

        from classifiers.head import Head
        from classifiers.training import Features  # noqa: F401

        d = 387
        Head(
            np.zeros(d, np.float32),
            np.ones(d, np.float32),
            np.zeros(d, np.float32),
            0.0,
            1.0,
            0.0,
            np.zeros((3, d), np.float32),
            np.zeros(3, np.float32),
            meta={"version": "placeholder"},
        ).save(out)
    progress = progress or no_progress
    clf = MiniLMClassifier(settings, head_dir=out, progress=progress)
    log(f"encoding {len(examples)} examples for the head")
    with progress(f"Encoding {len(examples)} examples (cached after the first run)"):
        feats = cached_encode(
            clf.encode, examples, settings.models_path / "cache", _feature_tag(settings)
        )
    result = train_head(feats, None, current=None, threshold=settings.threshold, version=version)
    result.head.meta.update(
        {
            "top_layers": top_layers,
            "epochs": epochs,
            "lr": lr,
            "quantized_features": settings.quantize,
            "graph": GRAPH_VERSION,
            "base_data": "VADER *_GroundTruth.txt + classifiers.synthetic "
            "(generate, generate_voices)",
        }
    )
    result.head.save(out)
    f1 = result.new_metrics["base_heldback"]["f1"]
    log(f"head {version}: held-back base unhappy-F1 {f1:.3f}")
    return out
