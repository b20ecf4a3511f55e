"""Two-sample statistics for judging a change between two timing runs. Pure Python.

- ``shift_interval``: the Hodges-Lehmann estimate of the shift between two samples (the
  median of all pairwise differences head - base) and its confidence interval, read from
  the Mann-Whitney distribution: exact below ``EXACT_LIMIT`` pairs, the normal
  approximation above. Applied to log-latencies, the shift is the log of the ratio of
  the two runs' typical latency, and the interval needs no assumption about the shape of
  the distribution, only that the head's samples are the base's scaled (Hollander &
  Wolfe, *Nonparametric Statistical Methods*, 3rd ed., section 4.3).
- ``mann_whitney_p``: the two-sided p-value of the same test (no change vs. a change).
- ``quantile_interval``: a distribution-free interval for one run's quantile (order
  statistics and the binomial distribution).

The k-th pairwise difference is found by counting, not by listing the m*n differences:
two runs of 1,000 samples each hold a million of them.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

# Up to this many pairs (m * n) the Mann-Whitney distribution is counted exactly: 50 x 50
# samples takes a few milliseconds; above it the normal approximation is within a rank.
EXACT_LIMIT = 2500


@dataclass(frozen=True)
class ShiftInterval:
    estimate: float  # Hodges-Lehmann: median of the pairwise differences head - base
    low: float
    high: float
    confidence: float  # what the interval achieves (exact) or aims at (normal approximation)
    method: str  # "exact" or "normal approximation"


@lru_cache(maxsize=64)
def u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings of two untied samples give U = 0, 1, ..., m*n.

    The counts are the coefficients of the Gaussian binomial [m+n choose m]_q, built as
    the product over i = 1..m of (1 - q^(n+i)) / (1 - q^i); each partial product is
    itself a polynomial of degree at most m*n, so the array never grows.
    """
    m, n = min(m, n), max(m, n)
    size = m * n + 1
    poly = [0] * size
    poly[0] = 1
    for i in range(1, m + 1):
        step = n + i
        for k in range(size - 1, step - 1, -1):  # multiply by (1 - q^step)
            poly[k] -= poly[k - step]
        for k in range(i, size):  # divide by (1 - q^i): exact, the quotient is a polynomial
            poly[k] += poly[k - i]
    return tuple(poly)


def u_cdf(m: int, n: int, u: int) -> float:
    """Exact P(U <= u) for untied samples of sizes m and n under no change."""
    if u < 0:
        return 0.0
    counts = u_counts(m, n)
    return sum(counts[: u + 1]) / math.comb(m + n, m)


def mann_whitney_u(base: Sequence[float], head: Sequence[float]) -> float:
    """U of the head sample: pairs where head > base, ties counting one half."""
    below = sorted(base)
    total = 0.0
    for y in head:
        less = bisect_left(below, y)
        equal = bisect_right(below, y) - less
        total += less + equal / 2
    return total


def mann_whitney_p(
    base: Sequence[float], head: Sequence[float], exact: bool | None = None
) -> float:
    """Two-sided p-value of the Mann-Whitney test. Exact (unless ``exact`` is False) for
    untied samples with at most EXACT_LIMIT pairs; otherwise the normal approximation with
    tie and continuity corrections (R's wilcox.test, scipy's method="asymptotic")."""
    m, n = len(base), len(head)
    if not m or not n:
        raise ValueError("the Mann-Whitney test needs samples in both runs")
    u = mann_whitney_u(base, head)
    u_low = min(u, m * n - u)
    pooled = [*base, *head]
    tied = len(set(pooled)) < len(pooled)
    if exact is None:
        exact = m * n <= EXACT_LIMIT and not tied
    if exact:
        return min(1.0, 2 * u_cdf(m, n, int(u_low)))
    sigma = math.sqrt(_u_variance(m, n, pooled))
    if sigma == 0:
        return 1.0
    z = (u_low - m * n / 2 + 0.5) / sigma
    return min(1.0, 2 * NormalDist().cdf(z))


def _u_variance(m: int, n: int, pooled: Sequence[float]) -> float:
    total = m + n
    groups: dict[float, int] = {}
    for v in pooled:
        groups[v] = groups.get(v, 0) + 1
    ties = sum(t**3 - t for t in groups.values())
    return m * n / 12 * ((total + 1) - ties / (total * (total - 1)))


def trimmed_rank(
    m: int, n: int, confidence: float, exact: bool | None = None
) -> tuple[int, float, str]:
    """k such that [D_(k), D_(mn+1-k)] of the sorted pairwise differences is the shortest
    interval with at least ``confidence`` coverage; k = 0 when no interval of these sizes
    reaches it (the widest, [min, max], covers with 1 - 2 / C(m+n, m)).

    Coverage of [D_(k), D_(mn+1-k)] is 1 - 2 P(U <= k - 1). Returns (k, coverage, method).
    """
    alpha = 1 - confidence
    if exact if exact is not None else m * n <= EXACT_LIMIT:
        counts = u_counts(m, n)
        total = math.comb(m + n, m)
        k, below = 0, 0
        while k < len(counts) and 2 * (below + counts[k]) <= alpha * total:
            below += counts[k]
            k += 1
        return k, 1 - 2 * below / total, "exact"
    z = NormalDist().inv_cdf(1 - alpha / 2)
    sigma = math.sqrt(m * n * (m + n + 1) / 12)
    # P(U <= k - 1) ~ Phi((k - 1 + 0.5 - mn/2) / sigma) <= alpha / 2, continuity-corrected
    k = max(0, math.floor(m * n / 2 - z * sigma + 0.5))
    return k, confidence, "normal approximation"


def shift_interval(
    base: Sequence[float], head: Sequence[float], confidence: float = 0.95
) -> ShiftInterval | None:
    """Hodges-Lehmann shift head - base with its confidence interval; None when the
    samples are too few for any interval to reach ``confidence`` (4 and 4 at 95%)."""
    m, n = len(base), len(head)
    if not m or not n:
        return None
    k, achieved, method = trimmed_rank(m, n, confidence)
    if k < 1:
        return None
    x, y = sorted(base), sorted(head)
    pairs = m * n
    middle = (kth_difference(x, y, (pairs + 1) // 2) + kth_difference(x, y, pairs // 2 + 1)) / 2
    return ShiftInterval(
        estimate=middle,
        low=kth_difference(x, y, k),
        high=kth_difference(x, y, pairs + 1 - k),
        confidence=achieved,
        method=method,
    )


def kth_difference(x: Sequence[float], y: Sequence[float], k: int) -> float:
    """The k-th smallest (1-based) of the m*n differences y_j - x_i, x and y sorted.

    Bisects on the value, counting the differences at or below it in O(m + n), until at
    most m + n differences lie in the bracket, then lists those.
    """
    m, n = len(x), len(y)
    if not 1 <= k <= m * n:
        raise ValueError(f"k={k} outside 1..{m * n}")
    lo, hi = y[0] - x[-1], y[-1] - x[0]  # the smallest and the largest difference
    if _count_at_most(x, y, lo) >= k:
        return lo
    while _count_at_most(x, y, hi) < k:  # rounding in y_j - t can leave out the largest
        hi = math.nextafter(hi, math.inf)
    # invariant: count(<= lo) < k <= count(<= hi)
    while _count_at_most(x, y, hi) - _count_at_most(x, y, lo) > m + n:
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:  # adjacent floats: every difference in (lo, hi] is hi
            return hi
        if _count_at_most(x, y, mid) >= k:
            hi = mid
        else:
            lo = mid
    inside = sorted(d for d in _differences_between(x, y, lo, hi))
    return inside[k - _count_at_most(x, y, lo) - 1]


def _count_at_most(x: Sequence[float], y: Sequence[float], t: float) -> int:
    """#{(i, j): y_j - x_i <= t}: for rising y_j the x_i >= y_j - t start later."""
    count, i, m = 0, 0, len(x)
    for v in y:
        while i < m and x[i] < v - t:
            i += 1
        count += m - i
    return count


def _differences_between(
    x: Sequence[float], y: Sequence[float], lo: float, hi: float
) -> Iterator[float]:
    """The differences y_j - x_i with lo < y_j - x_i <= hi."""
    start, stop, m = 0, 0, len(x)
    for v in y:
        while start < m and x[start] < v - hi:  # first x with v - x <= hi
            start += 1
        while stop < m and x[stop] < v - lo:  # first x with v - x <= lo
            stop += 1
        # the same comparisons as _count_at_most, so the two always agree on membership
        for xi in x[start:stop]:
            yield v - xi


def quantile_interval(
    values: Sequence[float], q: float, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Distribution-free interval for the q-quantile: order statistics X_(l) and X_(u),
    with P(l <= B < u) >= confidence for B ~ Binomial(n, q), each tail at most
    (1 - confidence) / 2. None when n is too small for either bound to exist."""
    n = len(values)
    if n == 0:
        return None
    tail = (1 - confidence) / 2
    pmf = [_binomial_pmf(n, j, q) for j in range(n + 1)]
    # l: the largest rank with P(B <= l - 1) <= tail
    low, below = 0, 0.0
    while low < n and below + pmf[low] <= tail:
        below += pmf[low]
        low += 1
    # u: the smallest rank with P(B >= u) <= tail
    high, above = n + 1, 0.0
    while high > 1 and above + pmf[high - 1] <= tail:
        above += pmf[high - 1]
        high -= 1
    if low < 1 or high > n or low > high:
        return None
    ordered = sorted(values)
    return ordered[low - 1], ordered[high - 1]


def _binomial_pmf(n: int, k: int, p: float) -> float:
    if p <= 0 or p >= 1:
        return float(k == (0 if p <= 0 else n))
    log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return math.exp(log + k * math.log(p) + (n - k) * math.log1p(-p))


def min_quantile_samples(q: float, confidence: float, limit: int = 10_000) -> int:
    """The fewest samples whose q-quantile interval exists at ``confidence``."""
    tail = (1 - confidence) / 2
    n = 1
    # both tails must fit beyond the extreme ranks: q^n <= tail and (1 - q)^n <= tail
    while n < limit and (q**n > tail or (1 - q) ** n > tail):
        n += 1
    return n
