"""Classifying a batch of posts for storing: in parts on a thread of its own for a large
batch, so that the pipeline stores one part while the model reads the next.

The model's inference (ONNX Runtime, tokenizers) releases the GIL, so a part classified
on this thread overlaps the database work of the part before on the pipeline's thread.
A post the model fails on alone is quarantined (its part is classified again post by
post); the model failing on a whole part is the model's failure, raised as itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from listener.cleaning import reject
from listener.collectors import Post, Rejected
from listener.errors import ClassifierError
from listener.outage import is_outage

if TYPE_CHECKING:
    from classifiers import Prediction
    from listener.app import App


def settled(classified: Classified) -> tuple[list[Post], dict[str, Prediction]]:
    """:meth:`Classified.all`, the model's failure raised as itself."""
    try:
        return classified.all()
    except ClassifyFailed as exc:
        raise exc.error from None


class ClassifyFailed(Exception):
    """The model failed on a part (the pipeline raises ``error`` itself)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Classified:
    """A batch's predictions, made in parts of ``part`` posts on a thread of its own, so
    that storing a part overlaps classifying the next (``polling.classify_part``; 0: one
    part, classified here).  The model's inference releases the GIL (a classifier whose does
    not is run part by part here instead).  Iterating gives each part (its posts that got a
    prediction, in order, and their predictions) when it is ready.
    """

    def __init__(self, parts: list[list[Post]], rejected: list[Rejected], seconds: float = 0.0):
        self.parts = parts
        self.predictions: dict[str, Prediction] = {}
        self.seconds = seconds
        self._ready: list[Future[dict[str, Prediction]]] = []
        self._rejected = [list[Rejected]() for _ in parts]
        self._taken = 0
        self._out = rejected  # each part's rejects join the batch's when it is taken

    @classmethod
    def start(
        cls, app: App, posts: list[Post], rejected: list[Rejected], *, part: int = 0
    ) -> Classified:
        """Classify ``posts`` in parts of ``part`` (0: one part, here and now)."""
        size = part if part > 0 else max(1, len(posts))
        out = cls([posts[i : i + size] for i in range(0, len(posts), size)], rejected)

        def classify(i: int) -> dict[str, Prediction]:
            t0 = time.perf_counter()
            try:
                return classify_posts(app, out.parts[i], out._rejected[i])
            finally:
                out.seconds += time.perf_counter() - t0

        # a classifier whose inference holds the GIL (pure Python: the lexicon) says so
        # with ``releases_gil = False``: a thread beside the storing one would only take
        # turns with it, so its parts are classified here, before any is stored
        if len(out.parts) > 1 and getattr(app.classifier, "releases_gil", True):
            # one thread, the parts in order; it ends when the last is classified
            pool = ThreadPoolExecutor(1, thread_name_prefix="classify")
            out._ready = [pool.submit(classify, i) for i in range(len(out.parts))]
            pool.shutdown(wait=False)
        else:
            for i in range(len(out.parts)):
                done: Future[dict[str, Prediction]] = Future()
                try:
                    done.set_result(classify(i))
                except Exception as exc:
                    done.set_exception(exc)
                out._ready.append(done)
        return out

    @classmethod
    def done(
        cls, posts: list[Post], predictions: dict[str, Prediction], seconds: float
    ) -> Classified:
        """Posts classified already (one part)."""
        out = cls([posts], [], seconds)
        ready: Future[dict[str, Prediction]] = Future()
        ready.set_result({p.external_id: predictions[p.external_id] for p in posts})
        out._ready = [ready]
        return out

    def __iter__(self) -> Iterator[tuple[list[Post], dict[str, Prediction]]]:
        for i, (posts, ready) in enumerate(zip(self.parts, self._ready, strict=True)):
            try:
                preds = ready.result()
            except Exception as exc:
                raise ClassifyFailed(exc) from exc
            if i >= self._taken:  # a part's rejects are the batch's once
                self._out.extend(self._rejected[i])
                self._taken = i + 1
            self.predictions.update(preds)
            yield [p for p in posts if p.external_id in preds], preds

    def all(self) -> tuple[list[Post], dict[str, Prediction]]:
        """Every part (waiting for the ones not classified yet)."""
        posts = [p for part, _ in self for p in part]
        return posts, self.predictions


def classify_posts(app: App, posts: list[Post], rejected: list[Rejected]) -> dict[str, Prediction]:
    """Predictions by external id; a post the model fails on alone is quarantined.

    The model failing on a whole batch (and on every post alone) is the
    model's problem, not the posts': that error propagates.
    """
    if not posts:
        return {}
    try:
        preds = app.classifier.predict([p.text for p in posts])
        return {p.external_id: pred for p, pred in zip(posts, preds, strict=True)}
    except ClassifierError:
        raise
    except Exception as batch_error:
        if is_outage(batch_error):
            raise
        out: dict[str, Prediction] = {}
        failed: list[Rejected] = []
        for post in posts:
            try:
                out[post.external_id] = app.classifier.predict([post.text])[0]
            except Exception as exc:
                failed.append(
                    reject(post, f"cannot be classified: {type(exc).__name__}", "classify")
                )
        if not out and len(posts) > 1:
            raise
        rejected.extend(failed)
        return out
