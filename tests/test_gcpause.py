"""The collector held back while a batch is stored (listener.gcpause)."""

from __future__ import annotations

import gc
import threading

from listener.gcpause import BATCH_THRESHOLD, fewer_collections


def test_the_threshold_is_raised_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (BATCH_THRESHOLD, *before[1:])
        with fewer_collections():  # nested: still raised, and not restored by the inner one
            pass
        assert gc.get_threshold()[0] == BATCH_THRESHOLD
    assert gc.get_threshold() == before


def test_restored_after_an_error_and_collection_still_runs() -> None:
    before = gc.get_threshold()
    runs: list[int] = []

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            runs.append(info["collected"])

    gc.callbacks.append(counted)
    try:
        with fewer_collections(threshold=1000):
            # cyclic garbage beyond the raised threshold is still collected
            for _ in range(5000):
                a: list[object] = []
                a.append(a)
            raise RuntimeError("the batch failed")
    except RuntimeError:
        pass
    finally:
        gc.callbacks.remove(counted)
    assert len(runs) >= 2 and sum(runs) > 1000
    assert gc.get_threshold() == before


def test_two_threads_share_one_raised_threshold() -> None:
    before = gc.get_threshold()
    inside = threading.Barrier(2)
    first_out = threading.Event()
    seen: list[int] = []

    def first() -> None:
        with fewer_collections():
            inside.wait()
        first_out.set()

    def second() -> None:
        with fewer_collections():
            inside.wait()
            first_out.wait(5)
            seen.append(gc.get_threshold()[0])  # the other left: still raised for this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [BATCH_THRESHOLD]
    assert gc.get_threshold() == before


def test_collection_switched_off_stays_off() -> None:
    before = gc.get_threshold()
    gc.set_threshold(0, *before[1:])
    try:
        with fewer_collections():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
