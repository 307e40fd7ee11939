"""Cooperative cancellation: work in a thread ends at its next checkpoint once the thread's
predicate says so. The warm start (ui.warm) runs the pages' defaults under `cancel_when(a user
waits for the device)`, and the loops that hold the device longest (compression.training.predict,
per batch; compression.timing.interleaved, per round) call `checkpoint()`, so a slider's result
never waits for a whole background evaluation. Elsewhere no predicate is set and checkpoint() is
a no-op."""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator


class Cancelled(Exception):
    """A newer request replaced this one: the work ends where it is, nothing is stored for it."""


_LOCAL = threading.local()


@contextlib.contextmanager
def cancel_when(predicate: Callable[[], bool]) -> Iterator[None]:
    """Inside the block, checkpoint() in this thread raises Cancelled once `predicate()` is true."""
    previous = getattr(_LOCAL, "predicate", None)
    _LOCAL.predicate = predicate
    try:
        yield
    finally:
        _LOCAL.predicate = previous


def checkpoint() -> None:
    """Raise Cancelled when this thread's predicate (cancel_when) is true; else nothing."""
    predicate = getattr(_LOCAL, "predicate", None)
    if predicate is not None and predicate():
        raise Cancelled()
