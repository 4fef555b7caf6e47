"""Classification throughput: our path vs a naive one-text-at-a-time forward.

    python bench/classify.py [--texts airline|vader] [--n 2000] [--naive-n 300] [--json out.json]

Texts are real tweets: the airline dev set's texts (default, what customers
write to a brand) or VADER's rated tweets (shorter), both from ../shared/data.
All paths run the same model (packaged MiniLM + our top layers + head) in the
same process, so the ratio is meaningful even when the machine is shared:

* naive: per text, tokenize → torch fp32 forward (no batching) → pool → head,
  and the same through a ``transformers.pipeline`` (the baseline the issue
  names; the bare forward is the stricter one, and both ratios are printed);
* batched: MiniLMClassifier with torch (fp32 length-sorted batches; int8 dynamic
  quantization one text per run) or ONNX Runtime (length-sorted batches of 16, fp32
  or int8 with fixed calibrated activation scales); the default is ONNX int8;
* duplicates: a stream where 25% of posts repeat earlier ones (retweets,
  copy-paste complaints), served by the dedupe cache.

Every figure is the full ``predict`` (encoder, head, categories, circumstances).
Rates are wall-clock (best of ``--repeat``) and, beside them, per CPU-second of
this process (less sensitive to other jobs on a shared machine).

Batch independence: each of ``--alone-n`` texts is classified alone and then
all together in one call; the flags that flip, the categories that change and
the largest score difference are reported (the issue's floor: 0 flips, equal
categories, scores within 1e-4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def hf_tokenizer(clf):  # type: ignore[no-untyped-def]
    """A transformers tokenizer for the naive paths (ours uses ``tokenizers`` directly)."""
    if not hasattr(clf, "_bench_tok"):
        from transformers import AutoTokenizer

        from classifiers.encoder import base_model_dir

        clf._bench_tok = AutoTokenizer.from_pretrained(str(base_model_dir()), local_files_only=True)
    return clf._bench_tok


def naive_predict(clf, texts):  # type: ignore[no-untyped-def]
    """One text at a time through the fp32 model, then the same head."""
    import numpy as np
    import torch

    from classifiers.encoder import lexicon_features
    from classifiers.text import model_input as normalize

    tok, bert = hf_tokenizer(clf), clf.encoder.bert
    out = []
    with torch.inference_mode():
        for t in texts:
            enc = tok(normalize(t), truncation=True, max_length=128, return_tensors="pt")
            h = bert(**enc).last_hidden_state
            sent = h.mean(1).numpy()
            x = clf.head.features(sent, lexicon_features([t]))
            out.append(float(clf.head.unhappy_proba(x)[0]))
    return np.array(out)


def naive_pipeline_predict(clf, texts):  # type: ignore[no-untyped-def]
    """One text at a time through a ``transformers.pipeline`` (feature extraction), then
    mean pooling and the same head: the textbook way to run a model per post."""
    import numpy as np
    from transformers import pipeline

    from classifiers.encoder import lexicon_features
    from classifiers.text import model_input as normalize

    if not hasattr(clf, "_bench_pipe"):
        clf._bench_pipe = pipeline(
            "feature-extraction",
            model=clf.encoder.bert,
            tokenizer=hf_tokenizer(clf),
            device="cpu",
        )
    out = []
    for t in texts:
        h = np.asarray(clf._bench_pipe(normalize(t), truncation=True, max_length=128)[0])
        x = clf.head.features(h.mean(0, keepdims=True), lexicon_features([t]))
        out.append(float(clf.head.unhappy_proba(x)[0]))
    return np.array(out)


CPU_RATES: dict[str, float] = {}


def timed(fn, texts, repeat: int = 1, name: str = "") -> float:  # type: ignore[no-untyped-def]
    """Texts per wall-clock second (best of ``repeat``); per CPU-second into CPU_RATES."""
    best = float("inf")
    best_cpu = float("inf")
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn(texts)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    if name:
        CPU_RATES[name] = len(texts) / best_cpu
    return len(texts) / best


def load_texts(which: str, root: Path) -> list[str]:
    """Real tweets: the airline dev set's texts (deduplicated) or VADER's rated tweets."""
    import csv

    from classifiers.data import load_vader

    if which == "vader":
        return [e.text for e in load_vader(root / "vader") if e.source == "tweets"]
    seen: set[str] = set()
    out = []
    with (root / "airline-dev" / "Tweets-dev.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["tweet_id"] not in seen:
                seen.add(row["tweet_id"])
                out.append(row["text"])
    return out


def batch_independence(clf, texts):  # type: ignore[no-untyped-def]
    """Each text alone, then all together: flips, changed categories, max |score diff|."""
    clf.encoder.clear_cache()
    alone = [clf.predict([t])[0] for t in texts]
    clf.encoder.clear_cache()
    together = clf.predict(texts)
    return {
        "texts": len(texts),
        "flags_flipped": sum(a.unhappy != b.unhappy for a, b in zip(alone, together, strict=True)),
        "categories_changed": sum(
            a.category != b.category for a, b in zip(alone, together, strict=True)
        ),
        "max_score_difference": max(
            abs(a.unhappy_score - b.unhappy_score) for a, b in zip(alone, together, strict=True)
        ),
    }


def main() -> None:
    from classifiers.minilm import MiniLMClassifier
    from classifiers.settings import ClassifierSettings

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data"), help="../shared/data")
    ap.add_argument("--texts", choices=["airline", "vader"], default="airline")
    ap.add_argument("--alone-n", type=int, default=200, help="Texts for the batch check.")
    ap.add_argument("--models-dir", default=None, help="classifier.models_dir (default: cache)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--naive-n", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="Time every path this many times and keep the best (noisy boxes).",
    )
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()

    tweets = load_texts(args.texts, Path(args.data))
    rng = random.Random(1)
    rng.shuffle(tweets)
    texts = tweets[: args.n]
    dup_stream = texts[: int(args.n * 0.75)]
    dup_stream = dup_stream + [rng.choice(dup_stream) for _ in range(args.n - len(dup_stream))]
    rng.shuffle(dup_stream)

    results: dict[str, object] = {
        "machine": machine(),
        "corpus": args.texts,
        "texts": len(texts),
        "mean_chars": sum(map(len, texts)) / len(texts),
    }
    base = ClassifierSettings(batch_size=args.batch_size, models_dir=args.models_dir)

    def cold(clf):  # type: ignore[no-untyped-def]
        def run(t):  # type: ignore[no-untyped-def]
            clf.encoder.clear_cache()
            clf.predict(t)

        return run

    rates: dict[str, float] = {}
    agreement: dict[str, float] = {}
    ref = MiniLMClassifier(base.model_copy(update={"quantize": False, "backend": "torch"}))
    ref.predict(texts[:32])
    rates["naive_one_at_a_time_fp32"] = timed(
        partial(naive_predict, ref), texts[: args.naive_n], args.repeat, "naive_one_at_a_time_fp32"
    )
    rates["naive_transformers_pipeline_fp32"] = timed(
        partial(naive_pipeline_predict, ref),
        texts[: args.naive_n],
        args.repeat,
        "naive_transformers_pipeline_fp32",
    )
    rates["batched_torch_fp32"] = timed(cold(ref), texts, args.repeat, "batched_torch_fp32")
    ref_flags = [p.unhappy for p in ref.predict(texts)]
    ref = None
    variants = {
        "torch_int8 (one text per run)": {"backend": "torch"},
        "onnx_fp32 (batches of 16)": {"quantize": False},
        "onnx_int8 (fixed scales, batches of 16, default)": {},
    }
    for name, update in variants.items():
        clf = MiniLMClassifier(base.model_copy(update=update))
        clf.predict(texts[:32])
        rates[name] = timed(cold(clf), texts, args.repeat, name)
        flags = [p.unhappy for p in clf.predict(texts)]
        agreement[name] = sum(a == b for a, b in zip(flags, ref_flags, strict=True)) / len(texts)
        if name.endswith("default)"):
            rates["default + 25% duplicate posts (dedupe cache)"] = timed(
                cold(clf), dup_stream, args.repeat, "default + 25% duplicate posts (dedupe cache)"
            )
            results["batch_independence"] = batch_independence(clf, texts[: args.alone_n])
        clf = None
    naive = rates["naive_one_at_a_time_fp32"]
    pipe = rates["naive_transformers_pipeline_fp32"]
    results["texts_per_second"] = {k: round(v, 1) for k, v in rates.items()}
    # the stricter baseline: our own one-at-a-time forward (no pipeline overhead)
    results["speedup_vs_naive"] = {k: round(v / naive, 2) for k, v in rates.items()}
    # the baseline issue #5 names: one text at a time through transformers.pipeline
    results["speedup_vs_pipeline"] = {k: round(v / pipe, 2) for k, v in rates.items()}
    results["unhappy_flag_agreement_with_fp32"] = {k: round(v, 4) for k, v in agreement.items()}
    cpu_pipe = CPU_RATES["naive_transformers_pipeline_fp32"]
    results["texts_per_cpu_second"] = {k: round(v, 1) for k, v in CPU_RATES.items()}
    results["cpu_speedup_vs_pipeline"] = {k: round(v / cpu_pipe, 2) for k, v in CPU_RATES.items()}
    print(json.dumps(results, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
