"""A large batch's posts read in a worker process while the batch is stored.

Triage reads a post (:func:`listener.understanding.understand`, pure Python, a
quarter of a millisecond) whenever it opens a case or follows one: for a batch
of thousands that was the storing thread's largest single cost.  The reading
needs nothing from the database, so a batch part's likely readings are handed
to the feed parse processes (:mod:`listener.collectors.parsing`) as soon as
the part is classified, and done there while this process upserts its authors
and inserts its mentions; triage then takes each reading that is ready and
reads the rest itself.  Nothing waits on the workers: a reading that is late,
or a pool that is missing or broken, costs only the reading done here, as
before.  The function and its inputs are the same (:func:`reading_inputs` is the
key), so a reading done ahead equals the one done here.

Read ahead: posts the classifier calls unhappy or not positive (the ones that
open cases).  A happy post is read only when it follows a case; those few are
read in triage.  Parts with fewer than ``polling.read_ahead`` such posts are
read in triage as before (a process round trip is not worth it for a handful).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from listener.collectors import parsing
from listener.understanding import Understanding, understand

if TYPE_CHECKING:
    from listener.config import Settings

#: what a reading is found by: (text, context, context by brand, category)
Key = tuple[str, str | None, bool, str | None]

#: readings per task sent to a worker (results come back task by task)
TASK_POSTS = 100


def read_all(keys: Sequence[Key], brand_terms: list[str]) -> list[Understanding]:
    """In a worker: each post of ``keys`` read as :func:`listener.cases.offering.understand_mention`
    reads it."""
    return [
        understand(
            text,
            context=context,
            context_by_brand=by_brand,
            category=category,
            brand_terms=brand_terms,
        )
        for text, context, by_brand, category in keys
    ]


def warm(settings: Settings, posts: int) -> None:
    """Start the parse processes now if a batch of ``posts`` may read ahead, so that they
    are up by the time its first part is classified (a no-op where they are running)."""
    least = settings.polling.read_ahead
    if least and posts >= least:
        parsing.submit(parsing.worker_count(settings.polling.parse_workers), len, ())


class Ahead:
    """The readings a batch sent ahead; :meth:`get` takes one if it is back."""

    def __init__(self) -> None:
        self._where: dict[Key, tuple[Future[list[Understanding]], int]] = {}
        self._futures: list[Future[list[Understanding]]] = []
        self.sent = 0
        self.hits = 0

    def send(self, settings: Settings, keys: Sequence[Key]) -> None:
        """Start reading ``keys`` (duplicates and ones already sent are skipped) in the
        parse processes, if there are any and enough posts to read."""
        least = settings.polling.read_ahead
        wanted = list(dict.fromkeys(k for k in keys if k not in self._where))
        if least == 0 or len(wanted) < least:
            return
        workers = parsing.worker_count(settings.polling.parse_workers)
        terms = list(settings.brand.match_terms)
        for i in range(0, len(wanted), TASK_POSTS):
            chunk = wanted[i : i + TASK_POSTS]
            future = parsing.submit(workers, read_all, chunk, terms)
            if future is None:
                return  # no pool here: triage reads them
            self._futures.append(future)
            self.sent += len(chunk)
            for index, key in enumerate(chunk):
                self._where[key] = (future, index)

    def get(self, key: Key) -> Understanding | None:
        """The reading of ``key`` if it is back (never waits); None: read it here."""
        found = self._where.get(key)
        if found is None:
            return None
        future, index = found
        if not future.done() or future.cancelled() or future.exception() is not None:
            return None
        self.hits += 1
        return future.result()[index]

    def close(self) -> None:
        """Cancel the readings not yet started (the batch is stored)."""
        for future in self._futures:
            future.cancel()
        self._futures.clear()
        self._where.clear()
