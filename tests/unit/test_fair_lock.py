"""The local cloud's invocation lock: reentrant, and granted in arrival order."""

from __future__ import annotations

import threading
import time

import pytest

from dogbreed.local.fair_lock import FairRLock


def test_waiters_get_the_lock_in_arrival_order() -> None:
    # Given a held lock and five threads that ask for it one after another
    lock = FairRLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for index in range(5):
        thread = threading.Thread(target=lambda i=index: _record(lock, order, i))
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # each one queued before the next arrives

    # When the holder lets go
    lock.release()
    for thread in threads:
        thread.join(timeout=5)

    # Then they got it first come, first served
    assert order == [0, 1, 2, 3, 4]


def _record(lock: FairRLock, order: list[int], index: int) -> None:
    with lock:
        order.append(index)


def test_the_holder_may_take_it_again() -> None:
    lock = FairRLock()
    with lock, lock:
        pass
    assert lock.acquire()  # fully released: free again
    lock.release()


def test_the_lock_stays_held_until_the_outermost_release() -> None:
    # Given a lock taken twice by one thread and released once
    lock = FairRLock()
    lock.acquire()
    lock.acquire()
    lock.release()
    got = threading.Event()

    def take() -> None:
        with lock:
            got.set()

    thread = threading.Thread(target=take)
    thread.start()

    # Then another thread still waits, until the outer release
    assert not got.wait(0.2)
    lock.release()
    assert got.wait(5)
    thread.join(timeout=5)


def test_a_thread_that_does_not_hold_it_cannot_release_it() -> None:
    with pytest.raises(RuntimeError):
        FairRLock().release()
