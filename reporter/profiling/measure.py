"""Timing a callable outside the profiler: warm-up until stable, then blocked samples.

Like ``torch.utils.benchmark.Timer.blocked_autorange``: each sample times a block of
``number`` calls and divides, so timer resolution and loop overhead vanish even for
sub-millisecond models; the median over samples resists outliers. On CUDA the block is
bracketed by synchronisation (host time) and by CUDA events (device time).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from reporter.profiling.counters import Snapshot, snapshot, usable_cpus
from reporter.profiling.stats import median_interval

# A sample lasts at least 1 ms: timer overhead (~0.1 µs) is then below 1e-4 of it, as
# Timer.blocked_autorange requires; short blocks keep preemption by other processes out
# of most samples, so the median stays close to the undisturbed time.
MIN_BLOCK_S = 0.001
MIN_SAMPLES = 5  # slow models: a few samples beat a run that takes minutes
MAX_SAMPLES = 1000
SLOW_MIN_SAMPLES = 3
STABLE_WINDOW = 5  # warm-up ends when two windows of up to this many calls agree ...
STABLE_TOLERANCE = 0.05  # ... within 5%
MIN_WARMUP_CALLS = 2  # the first call pays one-off costs; the second shows if they are gone
# Measuring stops early, after at least this share of its budget, once the 95% confidence
# interval of the median is within +-1% of it: more samples would not change the figure.
PRECISE_HALF_WIDTH = 0.01
MIN_BUDGET_SHARE = 0.25
CHECK_EVERY_S = 0.05  # how often the interval is recomputed (a sort of the samples)


@dataclass
class Measurement:
    samples_ms: list[float]  # per-call time of each sample
    number: int  # calls per sample
    warmup_calls: int
    warmup_stable: bool
    seconds: float  # measuring time, warm-up excluded
    stopped_early: bool = False  # the median was known to +-1% before the budget ran out
    cuda_event_ms: list[float] = field(default_factory=list)
    # Process and machine counters around the timed blocks (warm-up excluded): page
    # faults, CPU time, other load. See reporter.profiling.counters.
    start: Snapshot | None = None
    end: Snapshot | None = None


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def warm_up(
    fn: Callable[[], object],
    sync: Callable[[], None],
    budget_s: float,
    min_calls: int = MIN_WARMUP_CALLS,
) -> tuple[list[float], bool]:
    """Call ``fn`` until the median of the last window is within 5% of the one before.

    The window is 5 calls, or fewer when two windows would not fit in the budget at the
    latest call's pace: a 150 ms model then compares single calls instead of running out
    of budget before it can tell. Returns the per-call times (s) and whether it settled
    before the budget ran out; at least ``min_calls`` calls either way.
    """
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while True:
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        window = stable_window(budget_s, times[-1])
        if len(times) >= max(min_calls, 2 * window):
            last = statistics.median(times[-window:])
            before = statistics.median(times[-2 * window : -window])
            if abs(last - before) <= STABLE_TOLERANCE * before:
                return times, True
        if time.perf_counter() >= deadline and len(times) >= min_calls:
            return times, False


def stable_window(budget_s: float, per_call_s: float) -> int:
    """Calls per warm-up window: two windows must fit in the warm-up budget."""
    if per_call_s <= 0:
        return STABLE_WINDOW
    return max(1, min(STABLE_WINDOW, int(budget_s / (2 * per_call_s))))


def precise_enough(samples: list[float]) -> bool:
    """Whether the median's 95% confidence interval is within +-1% of the median."""
    interval = median_interval(samples)
    if interval is None:
        return False
    median = statistics.median(samples)
    return median > 0 and (interval[1] - interval[0]) / 2 <= PRECISE_HALF_WIDTH * median


def measure(
    fn: Callable[[], object],
    device: torch.device,
    budget_s: float = 2.0,
    warmup_budget_s: float | None = None,
    min_samples: int = MIN_SAMPLES,
    min_warmup_calls: int = MIN_WARMUP_CALLS,
) -> Measurement:
    """Time ``fn`` in blocks for about ``budget_s`` seconds (at least ``min_samples``).

    Stops sooner, once a quarter of the budget is spent, if the median is already known
    to +-1% at 95% confidence (see ``precise_enough``).
    """
    sync = synchronizer(device)
    warm_budget = budget_s / 2 if warmup_budget_s is None else warmup_budget_s
    warm, stable = warm_up(fn, sync, warm_budget, min_warmup_calls)
    per_call = statistics.median(warm[-STABLE_WINDOW:])
    number = max(1, math.ceil(MIN_BLOCK_S / per_call - 1e-6)) if per_call > 0 else 1
    n_samples = int(budget_s / max(per_call * number, 1e-9) + 1e-6)  # 99.999.. is 100
    # A model slower than the budget allows still gets 3 samples, not min_samples: for
    # GPT-2 on a laptop CPU that is seconds, not a minute.
    floor = min_samples if per_call * number * min_samples <= 2 * budget_s else SLOW_MIN_SAMPLES
    n_samples = max(floor, min(MAX_SAMPLES, n_samples))
    cuda = device.type == "cuda"
    samples: list[float] = []
    events_ms: list[float] = []
    stopped_early = False
    cpus = usable_cpus()
    start = snapshot(cpus)
    started = time.perf_counter()
    check_at = started + MIN_BUDGET_SHARE * budget_s
    for _ in range(n_samples):
        if cuda:
            start_evt = torch.cuda.Event(enable_timing=True)
            end_evt = torch.cuda.Event(enable_timing=True)
        sync()
        t0 = time.perf_counter()
        if cuda:
            start_evt.record()
        for _ in range(number):
            fn()
        if cuda:
            end_evt.record()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3 / number)
        if cuda:
            events_ms.append(start_evt.elapsed_time(end_evt) / number)
        now = time.perf_counter()
        if now >= check_at and len(samples) >= min_samples:
            if precise_enough(samples):
                stopped_early = len(samples) < n_samples
                break
            check_at = now + CHECK_EVERY_S
    end = snapshot(cpus)
    return Measurement(
        samples_ms=samples,
        number=number,
        warmup_calls=len(warm),
        warmup_stable=stable,
        seconds=time.perf_counter() - started,
        stopped_early=stopped_early,
        cuda_event_ms=events_ms,
        start=start,
        end=end,
    )
