"""Latency statistics over raw samples, kept simple enough to recompute by hand."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from reporter.report.profile import LatencyStats, ProfileSection

# A run whose coefficient of variation or p99/median passes these is marked noisy.
NOISY_CV = 0.10
NOISY_TAIL = 1.5


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default 'linear' method)."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median_interval(
    values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median: order statistics.

    The k-th smallest and k-th largest values bound the median with probability
    1 - 2 P(Binomial(n, 1/2) < k), whatever the distribution of the samples; k is the
    largest rank that keeps this at ``confidence`` or above. None below 6 samples, where
    even the smallest and largest value give less than 95%.
    """
    n = len(values)
    tail = (1 - confidence) / 2
    k = 0
    below = 0  # P(Binomial(n, 1/2) <= k - 1), in units of 2**-n
    while k < n // 2 and (below + math.comb(n, k)) / 2**n <= tail:
        below += math.comb(n, k)
        k += 1
    if k == 0:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[n - k]


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    mean = statistics.fmean(samples_ms)
    std = statistics.pstdev(samples_ms) if len(samples_ms) > 1 else 0.0
    interval = median_interval(samples_ms)
    return LatencyStats(
        median=quantile(samples_ms, 0.5),
        p90=quantile(samples_ms, 0.9),
        p99=quantile(samples_ms, 0.99),
        min=min(samples_ms),
        max=max(samples_ms),
        mean=mean,
        iqr=quantile(samples_ms, 0.75) - quantile(samples_ms, 0.25),
        cv=std / mean if mean > 0 else 0.0,
        median_low=interval[0] if interval else None,
        median_high=interval[1] if interval else None,
    )


def noise_reason(stats: LatencyStats) -> str:
    """Why a measurement should not be trusted to a few percent; '' when it can be."""
    reasons = []
    if stats.cv > NOISY_CV:
        reasons.append(f"coefficient of variation {stats.cv:.0%} > {NOISY_CV:.0%}")
    if stats.median > 0 and stats.p99 / stats.median > NOISY_TAIL:
        reasons.append(f"p99 is {stats.p99 / stats.median:.1f}x the median")
    return "; ".join(reasons)


def profiler_overhead(profile: ProfileSection | None, median_ms: float) -> float | None:
    """Profiled inference step / timed latency; None without both figures."""
    if profile is None or profile.mode != "inference" or not profile.step_us_median:
        return None
    return profile.step_us_median / 1e3 / median_ms if median_ms > 0 else None


def knee(batches: Sequence[int], throughputs: Sequence[float], share: float = 0.9) -> int | None:
    """The smallest batch whose throughput reaches ``share`` of the best one seen."""
    if not throughputs:
        return None
    best = max(throughputs)
    return next(b for b, t in zip(batches, throughputs, strict=True) if t >= share * best)
