"""reporter.stats against published values and brute force."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from reporter.profiling.stats import median_interval
from reporter.stats import (
    kth_difference,
    mann_whitney_p,
    mann_whitney_u,
    min_quantile_samples,
    quantile_interval,
    shift_interval,
    trimmed_rank,
    u_counts,
)


def brute_u_counts(m: int, n: int) -> list[int]:
    """U over every way to place m base values among m + n ranks."""
    counts = [0] * (m * n + 1)
    for base_ranks in itertools.combinations(range(m + n), m):
        head_ranks = sorted(set(range(m + n)) - set(base_ranks))
        counts[sum(1 for h in head_ranks for b in base_ranks if h > b)] += 1
    return counts


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (4, 4), (3, 6), (5, 5)])
def test_u_distribution_counts_every_arrangement(m: int, n: int) -> None:
    assert list(u_counts(m, n)) == brute_u_counts(m, n)
    assert sum(u_counts(m, n)) == math.comb(m + n, m)


# Two-tailed 5% critical values of Mann-Whitney U for equal samples (published tables,
# e.g. Siegel & Castellan, Nonparametric Statistics, table J): reject when U <= value.
CRITICAL_05 = {5: 2, 6: 5, 7: 8, 8: 13, 9: 17, 10: 23, 15: 64, 20: 127}


@pytest.mark.parametrize(("n", "critical"), CRITICAL_05.items())
def test_interval_rank_matches_published_critical_values(n: int, critical: int) -> None:
    k, coverage, method = trimmed_rank(n, n, 0.95)
    assert method == "exact"
    assert k - 1 == critical  # the interval drops the `critical` + 1 - 1 extreme pairs
    assert coverage >= 0.95


@pytest.mark.parametrize(("m", "n"), [(50, 50), (30, 80), (20, 20)])
def test_normal_approximation_agrees_with_exact(m: int, n: int) -> None:
    k_exact, _, _ = trimmed_rank(m, n, 0.95, exact=True)
    k_normal, _, method = trimmed_rank(m, n, 0.95, exact=False)
    assert method == "normal approximation"
    assert abs(k_normal - k_exact) <= 1
    assert trimmed_rank(51, 50, 0.95)[2] == "normal approximation"  # above EXACT_LIMIT


def test_p_values_published_by_chromium_pinpoint() -> None:
    # dashboard/pinpoint/models/compare/mann_whitney_u_test.py (normal approximation with
    # continuity and tie corrections)
    assert mann_whitney_p(range(10), range(20, 30), exact=False) == pytest.approx(
        0.00018267179110955002, rel=1e-9
    )
    assert mann_whitney_p(range(5), range(10)) == pytest.approx(0.13986357686781267, rel=1e-9)
    assert mann_whitney_p([0] * 5, [1] * 5) == pytest.approx(0.0039767517097886512, rel=1e-9)
    # exact: complete separation of 10 and 10 is 2 of C(20, 10) orderings
    assert mann_whitney_p(range(10), range(20, 30)) == pytest.approx(2 / math.comb(20, 10))


def test_u_statistic_counts_ties_as_half() -> None:
    assert mann_whitney_u([1, 2, 3], [2, 4]) == 1 + 0.5 + 3  # 2 beats 1, ties 2; 4 beats all


def test_kth_difference_against_all_differences() -> None:
    rng = random.Random(4)
    for _ in range(150):
        m, n = rng.randint(1, 25), rng.randint(1, 25)
        # rounded values make ties, and many equal differences
        x = sorted(round(rng.lognormvariate(0, 0.3), rng.choice([1, 6])) for _ in range(m))
        y = sorted(round(rng.lognormvariate(0, 0.3), rng.choice([1, 6])) for _ in range(n))
        every = sorted(b - a for a in x for b in y)
        for k in {1, m * n, (m * n + 1) // 2, rng.randint(1, m * n)}:
            assert kth_difference(x, y, k) == pytest.approx(every[k - 1], abs=1e-12)


def test_shift_interval_is_the_sorted_differences_at_the_critical_rank() -> None:
    rng = random.Random(8)
    x = [rng.gauss(10, 1) for _ in range(10)]
    y = [rng.gauss(11, 1) for _ in range(10)]
    every = sorted(b - a for a in x for b in y)
    found = shift_interval(x, y)
    assert found is not None
    assert found.low == pytest.approx(every[23]) and found.high == pytest.approx(every[76])
    assert found.estimate == pytest.approx((every[49] + every[50]) / 2)
    assert shift_interval(x[:3], y[:3]) is None  # 3 vs 3 cannot reach 95%


def test_quantile_interval_of_the_median_is_the_timing_stage_interval() -> None:
    rng = random.Random(2)
    for n in (6, 7, 20, 101):
        values = [rng.random() for _ in range(n)]
        assert quantile_interval(values, 0.5) == median_interval(values)
    assert quantile_interval([1.0] * 5, 0.5) is None


def test_quantile_interval_coverage_by_simulation() -> None:
    rng = random.Random(9)
    true_p90 = -math.log(0.1)  # exponential(1)
    covered = sum(
        (iv := quantile_interval([rng.expovariate(1) for _ in range(60)], 0.9)) is not None
        and iv[0] <= true_p90 <= iv[1]
        for _ in range(2000)
    )
    assert covered / 2000 >= 0.94


def test_minimum_samples_for_a_quantile_interval() -> None:
    assert min_quantile_samples(0.5, 0.95) == 6  # as median_interval: None below 6
    assert min_quantile_samples(0.9, math.sqrt(0.95)) == 42  # 0.9**42 <= 1.27% < 0.9**41
    assert quantile_interval(list(range(41)), 0.9, math.sqrt(0.95)) is None
    assert quantile_interval(list(range(42)), 0.9, math.sqrt(0.95)) is not None
