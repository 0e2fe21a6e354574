"""Timing shared by the benchmarks."""

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], *, repeats: int) -> float:
    """Median wall time of fn() in milliseconds over `repeats` runs."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)
