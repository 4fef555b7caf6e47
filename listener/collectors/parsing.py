"""Where feeds are parsed: a small process pool beside the polling threads.

The same pool reads a large batch's posts ahead of its triage
(:mod:`listener.readahead`, through :func:`submit`).

Parsing is Python work (the fast path replays expat's events through Python
handlers; feedparser, its fallback, is pure Python), so however many threads
fetch, feeds are parsed one at a time (the GIL), and a full poll of many feeds
costs the sum of their parse times on one core.  With ``polling.parse_workers`` processes, parses
run on the other cores while this process keeps fetching and storing
(docs/benchmarks.md, "Feed polling").

* The pool is per process, created on first use, and reused by every later
  poll (``listener run`` pays its start-up once).  Workers come from a
  ``forkserver`` (a clean process; forking this one, which runs HTTP threads
  and database connections, would not be safe) with the feed collector
  preloaded, and exit by themselves when the owning process dies, even by
  SIGKILL (:func:`watch_owner`).  They are not recycled after N tasks:
  ``max_tasks_per_child`` can deadlock the pool on Python 3.11 (CPython
  gh-115634).
* What crosses the process boundary is small and plain: the body, the
  headers, the source's and the brand's settings, and back the posts.
* If the pool cannot start (an environment that forbids child processes), the
  parse runs in the calling thread, as with ``parse_workers: 0``.  If a worker
  dies mid-parse (killed for memory, say), the pool is replaced and the parse
  tried once more in the new one; if that dies too the feed gets a
  ``TransientError`` (backoff, then a retry) and the poll goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from listener.cpu import available_cores
from listener.errors import TransientError

T = TypeVar("T")
log = logging.getLogger("listener.collectors.parsing")

#: Modules the forkserver imports once, so each worker starts warm.
PRELOAD = ["listener.collectors.feed", "listener.understanding"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None  # (pid, workers)
_unavailable: str | None = None  # why a pool cannot start in this process


def worker_count(setting: int | None) -> int:
    """Parse processes for ``polling.parse_workers`` (None: one per core, none on one core)."""
    if setting is not None:
        return setting
    cores = available_cores()
    return cores if cores > 1 else 0


def _get(workers: int) -> ProcessPoolExecutor | None:
    global _pool, _pool_key
    key = (os.getpid(), workers)
    with _lock:
        if _unavailable is not None:
            return None
        if _pool is not None and _pool_key == key:
            return _pool
        if _pool is not None and _pool_key is not None and _pool_key[0] == key[0]:
            _pool.shutdown(wait=False, cancel_futures=False)  # the setting changed
        if multiprocessing.current_process().daemon:
            _give_up("daemonic processes are not allowed to have children")
            return None
        try:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _pool = ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=watch_owner, initargs=(os.getpid(),)
            )
        except (OSError, ValueError, AssertionError) as exc:
            _give_up(f"{type(exc).__name__}: {exc}")
            return None
        _pool_key = key
        return _pool


def watch_owner(owner: int) -> None:
    """Worker initializer: exit when the process that owns the pool is gone.

    A worker waits on the pool's call queue, and it holds both ends of that pipe,
    so it never sees an EOF. If the owner is SIGKILLed (a systemd stop timeout or
    the OOM killer), its workers and their forkserver would run forever. This
    thread checks on the owner every second.
    """

    def alive() -> bool:
        try:
            with open(f"/proc/{owner}/stat", encoding="ascii", errors="replace") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False
        except OSError:  # no /proc: ask the kernel
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
            return True

    def watch() -> None:
        while alive():
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _give_up(reason: str) -> None:
    """No parse pool in this process from now on (caller holds ``_lock``)."""
    global _pool, _pool_key, _unavailable
    _unavailable = reason
    log.warning("feeds are parsed in-process: no parse pool (%s)", reason)
    _pool = _pool_key = None


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool, _pool_key
    with _lock:
        if _pool is pool:
            _pool = _pool_key = None
    pool.shutdown(wait=False, cancel_futures=True)


def run(
    workers: int, fn: Callable[..., T], *args: object, here: Callable[..., T] | None = None
) -> T:
    """``fn(*args)`` in a parse process (``workers`` > 0), else ``here(*args)`` in this thread.

    ``fn`` must be a module-level function and its arguments and result
    picklable; ``here`` (default ``fn``) is what runs without a pool.
    Exceptions the function raises reach the caller unchanged.
    """
    deaths = 0
    for _ in range(4):
        pool = _get(workers) if workers > 0 else None
        if pool is None:
            break
        try:
            future = pool.submit(fn, *args)  # starts worker processes when needed
        except BrokenProcessPool:  # another thread's worker died: take a new pool
            _discard(pool)
            continue
        except RuntimeError:  # shut down by another thread, or the interpreter is exiting
            _discard(pool)
            continue
        except (OSError, AssertionError) as exc:  # processes cannot start here after all
            with _lock:
                _give_up(f"{type(exc).__name__}: {exc}")
            pool.shutdown(wait=False, cancel_futures=True)
            break
        try:
            return future.result()
        except BrokenProcessPool as exc:
            _discard(pool)
            deaths += 1
            if deaths >= 2:
                raise TransientError(
                    f"the feed parser process died twice ({exc}); will retry later"
                ) from exc
            log.warning("a feed parser process died; starting a new pool")
    return (here or fn)(*args)


def submit(workers: int, fn: Callable[..., T], *args: object) -> Future[T] | None:
    """``fn(*args)`` started in a pool process (``workers`` > 0) without waiting for it;
    None where there is no pool (none asked for, or none possible here): the caller then
    does the work itself.  A pool found broken (a worker died) is replaced once.  Same
    rules for ``fn`` as :func:`run`."""
    for _ in range(2):
        pool = _get(workers) if workers > 0 else None
        if pool is None:
            return None
        try:
            return pool.submit(fn, *args)
        except (BrokenProcessPool, RuntimeError):  # a worker died, or the pool was shut down
            _discard(pool)
        except (OSError, AssertionError) as exc:  # processes cannot start here after all
            with _lock:
                _give_up(f"{type(exc).__name__}: {exc}")
            pool.shutdown(wait=False, cancel_futures=True)
            return None
    return None


def worker_pids() -> list[int]:
    """Process ids of this process's parse workers (benchmarks read their CPU time)."""
    with _lock:
        pool = _pool
    return list(getattr(pool, "_processes", None) or {})


def shutdown() -> None:
    """Stop this process's parse pool (tests; interpreter exit does it too)."""
    global _pool, _pool_key
    with _lock:
        pool, _pool, _pool_key = _pool, None, None
    if pool is not None:
        pool.shutdown(wait=True)
