"""Progress reporting for slow model steps (first export, encoding, training).

Classifiers take a :class:`Progress`: called with a description (and a total
when the work is countable), it returns a context manager that yields an
``advance(n)`` callback.  :func:`no_progress` reports nothing (services, tests);
:func:`rich_progress` draws a spinner or bar on stderr for the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def __call__(
        self, description: str, total: int | None = None
    ) -> AbstractContextManager[Advance]: ...


@contextmanager
def no_progress(description: str, total: int | None = None) -> Iterator[Advance]:
    yield lambda _n: None


def rich_progress(console: Any = None) -> Progress:
    """Progress on stderr with rich (a spinner, or a bar when the total is known).

    Nothing is drawn when stderr is not a terminal; one line per step is printed instead.
    """

    @contextmanager
    def report(description: str, total: int | None = None) -> Iterator[Advance]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        out = console or Console(stderr=True)
        if not out.is_terminal:
            out.print(f"{description}…", markup=False, highlight=False)
            yield lambda _n: None
            return
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with RichProgress(*columns, console=out, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)

    return report
