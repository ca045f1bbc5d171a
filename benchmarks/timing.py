"""The one timing rule of every benchmark: the best of a few runs (the least disturbed by the
rest of the machine), after an optional warm-up run."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(fn: Callable[[], object], repeat: int = 3, *, warmup: bool = False) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` (a first, untimed call if ``warmup``:
    thread pools, page faults of the first allocations)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
