"""`perfreport diff` on timings: intervals for the change from both runs' raw samples,
judged against the threshold. Reports are built here from seeded samples, so nothing
depends on this machine's clock."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.diff import (
    MetricChange,
    ReportDiff,
    diff_reports,
    judge,
    single_run_detectable,
)
from reporter.profiling.stats import latency_stats, noise_reason
from reporter.render.diff_render import (
    render_diff_html,
    render_diff_markdown,
    render_diff_text,
)
from reporter.report import ModelInfo, Report, report_to_json
from reporter.report.profile import ModuleTime, OpTime, ProfileSection, TimingSection

BATCH = 8


def timed_report(samples: list[float], batch: int = BATCH) -> Report:
    """A report whose timing section is what the timing stage makes of these samples."""
    stats = latency_stats(samples)
    reason = noise_reason(stats)
    timing = TimingSection(
        latency_ms=stats,
        throughput=batch / stats.median * 1e3,
        batch_size=batch,
        samples_ms=list(samples),
        noisy=bool(reason),
        noise_reason=reason,
    )
    return Report(model=ModelInfo("Net", "net.py"), timing=timing)


def noisy_samples(rng: random.Random, n: int, median: float, sigma: float) -> list[float]:
    """Log-normal spread with 3% spikes of 1.5x to many times the median: a shared CPU."""
    out = []
    for _ in range(n):
        v = median * math.exp(rng.gauss(0, sigma))
        if rng.random() < 0.03:
            v *= 1 + 0.5 * rng.paretovariate(3)
        out.append(v)
    return out


def metric(diff: ReportDiff, key: str) -> MetricChange:
    return next(m for m in diff.metrics if m.key == key)


# Ten base samples spread over ±4.5% of 10 ms; the head is the base scaled.
BASE = [10.0 * (1 + 0.01 * d) for d in (-4.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5)]


def hand_interval(base: list[float], head: list[float]) -> tuple[float, float]:
    """The 95% interval for head/base of 10 vs 10 samples, by hand: all 100 differences of
    log-latencies sorted, the 24th smallest and the 24th largest (the published two-sided
    5% critical value of Mann-Whitney U for 10 and 10 is 23: P(U <= 23) <= 0.025)."""
    d = sorted(math.log(y) - math.log(x) for x in base for y in head)
    return math.exp(d[23]), math.exp(d[100 - 24])


@pytest.mark.parametrize(
    ("factor", "verdict"),
    [
        (1.30, "worse"),  # the whole interval beyond +5%
        (13.0, "worse"),
        (1.01, "within noise"),  # the whole interval inside ±5%
        (1.05, "inconclusive"),  # straddles +5%
        (0.70, "better"),
    ],
)
def test_median_interval_from_samples_and_verdict(factor: float, verdict: str) -> None:
    head = [v * factor for v in reversed(BASE)]
    diff = diff_reports(timed_report(BASE), timed_report(head))
    median = metric(diff, "latency_ms")
    low, high = hand_interval(BASE, head)
    assert median.change_low == pytest.approx(low - 1)
    assert median.change_high == pytest.approx(high - 1)
    # a pure scaling: every difference is log(factor) plus a symmetric spread
    assert median.change_estimate == pytest.approx(factor - 1)
    assert median.verdict == verdict
    assert judge(low, high, 0.05) == verdict
    assert (median.confidence, median.threshold) == (0.95, 0.05)
    # throughput is batch / latency: the same interval inverted, the same verdict
    throughput = metric(diff, "throughput")
    assert throughput.change_low == pytest.approx(1 / high - 1)
    assert throughput.verdict == verdict


def test_threshold_and_confidence_change_the_verdict() -> None:
    head = [v * 1.06 for v in BASE]  # +6%: inconclusive against ±5%
    low, _ = hand_interval(BASE, head)
    assert 1.02 < low < 1.05
    assert metric(diff_reports(timed_report(BASE), timed_report(head)), "latency_ms").verdict == (
        "inconclusive"
    )
    change = metric(
        diff_reports(timed_report(BASE), timed_report(head), threshold=0.02), "latency_ms"
    )
    assert change.verdict == "worse"
    # at 99.9% confidence the interval widens past +2% on the low side
    wide = diff_reports(timed_report(BASE), timed_report(head), threshold=0.02, confidence=0.999)
    assert metric(wide, "latency_ms").change_low < 0.02
    assert metric(wide, "latency_ms").verdict == "inconclusive"


def test_noisy_runs_are_judged_13x_slower_is_worse() -> None:
    """The case that used to pass the gate: base 3.57 ms with a CV above 10% (flagged
    noisy), head 47.1 ms; every timing verdict was "inconclusive"."""
    rng = random.Random(13)
    base = timed_report(noisy_samples(rng, 250, 3.57, 0.10))
    head = timed_report(noisy_samples(rng, 21, 47.1, 0.10))
    assert base.timing.noisy and base.timing.latency_ms.cv > 0.10
    diff = diff_reports(base, head)
    median = metric(diff, "latency_ms")
    assert median.verdict == "worse" and "flagged noisy" in median.note
    assert median.change_low > 10  # at least 11x
    assert median.p_value is not None and median.p_value < 1e-10
    assert metric(diff, "throughput").verdict == "worse"
    assert {m.key for m in diff.worse} >= {"latency_ms", "throughput"}


def test_p90_interval_from_order_statistics() -> None:
    rng = random.Random(90)
    few = [timed_report(noisy_samples(rng, 30, 10.0, 0.05)) for _ in range(2)]
    p90 = metric(diff_reports(*few), "latency_p90_ms")
    # both run intervals at sqrt(0.95) = 97.47% need 0.9^n <= 1.26%: n >= 42
    assert p90.verdict == "inconclusive"
    assert p90.note == "samples: base 30, head 30; a p90 at 95% needs 42 in each run"
    base_s = noisy_samples(rng, 200, 10.0, 0.05)
    head_s = [v * 1.5 for v in noisy_samples(rng, 200, 10.0, 0.05)]
    p90 = metric(diff_reports(timed_report(base_s), timed_report(head_s)), "latency_p90_ms")
    b, h = p90_bounds(base_s), p90_bounds(head_s)
    assert p90.change_low == pytest.approx(h[0] / b[1] - 1)
    assert p90.change_high == pytest.approx(h[1] / b[0] - 1)
    assert p90.verdict == "worse"


def p90_bounds(samples: list[float]) -> tuple[float, float]:
    """Order statistics bounding the p90 at 97.47%, from binomial tails summed here."""
    n, tail = len(samples), (1 - math.sqrt(0.95)) / 2
    pmf = [math.comb(n, j) * 0.9**j * 0.1 ** (n - j) for j in range(n + 1)]
    low = max(r for r in range(1, n + 1) if sum(pmf[:r]) <= tail)  # P(B <= r-1) <= tail
    high = min(r for r in range(1, n + 1) if sum(pmf[r:]) <= tail)  # P(B >= r) <= tail
    ordered = sorted(samples)
    return ordered[low - 1], ordered[high - 1]


def test_too_few_samples_is_inconclusive_and_says_how_many() -> None:
    diff = diff_reports(timed_report([10.0, 10.2, 9.9]), timed_report([20.0, 20.5, 19.8]))
    median = metric(diff, "latency_ms")
    # 3 vs 3: even [min, max] of the differences covers only 1 - 2/20 = 90%
    assert median.verdict == "inconclusive"
    assert median.note == "samples: base 3, head 3; an interval at 95% needs 4 in each run"
    assert diff.detectable is None


def test_detectable_change_is_the_edge_of_worse() -> None:
    """Shift the head a little more than the detectable change: worse; a little less: not."""
    rng = random.Random(7)
    base_s = noisy_samples(rng, 60, 10.0, 0.08)
    head_s = noisy_samples(rng, 40, 10.0, 0.08)
    diff = diff_reports(timed_report(base_s), timed_report(head_s))
    found = diff.detectable
    assert found is not None and found.change > 0.05
    assert (found.base_samples, found.head_samples) == (60, 40)
    assert found.threshold < found.with_more_samples < found.change
    median = metric(diff, "latency_ms")
    # the pair as measured: its estimate, shifted to the edge
    scale = (1 + found.change) / (1 + median.change_estimate)
    for nudge, worse in ((1.001, True), (0.999, False)):
        shifted = timed_report([v * scale * nudge for v in head_s])
        verdict = metric(diff_reports(timed_report(base_s), shifted), "latency_ms").verdict
        assert (verdict == "worse") is worse
    assert "--timing-seconds" in found.text and "--threads" in found.text


def test_single_run_detectable_for_report_md() -> None:
    rng = random.Random(3)
    quiet = single_run_detectable(timed_report(noisy_samples(rng, 200, 10.0, 0.02)))
    noisy = single_run_detectable(timed_report(noisy_samples(rng, 200, 10.0, 0.20)))
    few = single_run_detectable(timed_report(noisy_samples(rng, 10, 10.0, 0.20)))
    assert quiet is not None and noisy is not None and few is not None
    assert 0.05 < quiet.change < noisy.change < few.change


@pytest.mark.parametrize("where", ["base", "head"])
def test_nan_is_never_better(where: str) -> None:
    nan = float("nan")
    rng = random.Random(1)
    reports = {w: timed_report(noisy_samples(rng, 30, 10.0, 0.05)) for w in ("base", "head")}
    broken = reports[where]
    broken.timing.latency_ms.median = nan
    broken.timing.latency_ms.p90 = nan
    broken.timing.throughput = nan
    diff = diff_reports(reports["base"], reports["head"])
    for m in diff.metrics:
        assert m.verdict == "not compared", m
        assert m.note == f"{where} not a finite number"
    # a NaN among the samples: no interval at all
    broken.timing.latency_ms.median = broken.timing.throughput = 10.0
    broken.timing.latency_ms.p90 = 11.0
    broken.timing.samples_ms[3] = nan
    diff = diff_reports(reports["base"], reports["head"])
    for m in diff.metrics:
        assert m.verdict == "inconclusive"
        assert f"{where} has samples that are not positive finite numbers" in m.note
    assert judge(nan, 0.5, 0.05) == judge(0.5, nan, 0.05) == "inconclusive"


def profile(
    step_us: list[float], modules: dict[str, float], ops: dict[str, float]
) -> ProfileSection:
    return ProfileSection(
        mode="inference",
        device="cpu",
        trace_files=[],
        step_us=step_us,
        modules=[ModuleTime(n, "Linear", 1, 1, us, us) for n, us in modules.items()],
        ops_by_name=[OpTime(n, 1, us, us, category="matmul") for n, us in ops.items()],
    )


def test_module_and_op_times_judged_with_the_step_interval() -> None:
    base_steps = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1002.0]
    head_steps = [v * 1.4 for v in base_steps]
    base, head = timed_report(BASE), timed_report(BASE)
    base.profile = profile(
        base_steps, {"fc1": 500.0, "fc2": 300.0, "tiny": 5.0}, {"aten::mm": 600.0}
    )
    head.profile = profile(
        head_steps, {"fc1": 900.0, "fc2": 310.0, "tiny": 9.0}, {"aten::mm": 1000.0}
    )
    diff = diff_reports(base, head)
    rows = {(t.kind, t.name): t for t in diff.times}
    # fc2 moved 3% (< 10%), tiny holds under 2% of a step: not listed
    assert set(rows) == {("module", "fc1"), ("op", "aten::mm")}
    fc1 = rows[("module", "fc1")]
    assert fc1.relative == pytest.approx(0.8)
    # the step interval: 6 vs 6 steps, exact Mann-Whitney, k = 6 (P(U <= 5) = 0.013)
    d = sorted(math.log(y) - math.log(x) for x in base_steps for y in head_steps)
    est = (d[17] + d[18]) / 2
    assert fc1.change_low == pytest.approx(1.8 * math.exp(d[5] - est) - 1)
    assert fc1.change_high == pytest.approx(1.8 * math.exp(d[30] - est) - 1)
    assert fc1.verdict == "worse" and rows[("op", "aten::mm")].verdict == "worse"
    assert "6 profiled steps" in diff.times_method and "self CPU time" in diff.times_method
    # module and op rows locate a change; they do not fail the gate on their own
    assert not diff.worse or {m.key for m in diff.worse} <= {"latency_ms", "throughput"}


def test_module_times_from_two_steps_are_not_judged() -> None:
    base, head = timed_report(BASE), timed_report(BASE)
    base.profile = profile([1000.0, 1010.0], {"fc1": 500.0}, {})
    head.profile = profile([1400.0, 1410.0], {"fc1": 900.0}, {})
    diff = diff_reports(base, head)
    (fc1,) = diff.times
    assert fc1.verdict == "inconclusive"
    assert fc1.note == (
        "an interval at 95% needs 4 profiled steps in each run (--profile-steps 0,1,4)"
    )
    base.profile.modules[0].total_us = float("nan")
    (fc1,) = diff_reports(base, head).times
    assert fc1.verdict == "not compared" and fc1.note == "not a finite time"


def test_views_show_interval_and_detectable() -> None:
    rng = random.Random(5)
    base = timed_report(noisy_samples(rng, 100, 3.57, 0.1))
    head = timed_report(noisy_samples(rng, 100, 47.1, 0.1))
    base.profile = profile([1000.0] * 6, {"<b>x</b>\x1b[31m": 500.0}, {})
    head.profile = profile([13000.0] * 6, {"<b>x</b>\x1b[31m": 6500.0}, {})
    diff = diff_reports(base, head)
    text = render_diff_text(diff)
    assert "95% interval +" in text and "(threshold ±5%)" in text
    assert "smallest slowdown of the median" in text
    assert "\x1b" not in text and "\\x1b[31m" in text  # a terminal escape shown, not sent
    md = render_diff_markdown(diff)
    assert "**worse** <sub>95% interval +" in md and "smallest slowdown" in md
    html = render_diff_html(diff)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def write(report: Report, path: Path) -> Path:
    path.write_text(report_to_json(report))
    return path


def test_cli_gate_13x_between_noisy_runs_fails_same_code_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(2026)
    base = write(timed_report(noisy_samples(rng, 250, 3.57, 0.10)), tmp_path / "base.json")
    same = write(timed_report(noisy_samples(rng, 240, 3.57, 0.10)), tmp_path / "same.json")
    slow = write(timed_report(noisy_samples(rng, 21, 47.1, 0.10)), tmp_path / "slow.json")
    assert json.loads(base.read_text())["timing"]["noisy"] is True
    assert main(["diff", str(base), str(slow), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "Latency median" in out and "worse" in out
    assert main(["diff", str(base), str(same), "--fail-on-regression"]) == 0
    assert main(["diff", str(base), str(same), "-o", str(tmp_path / "d"), "--format", "json"]) == 0
    data = json.loads((tmp_path / "d" / "diff.json").read_text())
    median = next(m for m in data["diff"]["metrics"] if m["key"] == "latency_ms")
    assert median["verdict"] in {"within noise", "inconclusive"}
    assert median["change_low"] < 0 < median["change_high"]
    assert data["diff"]["detectable"]["change"] > 0.05


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--threshold", "abc", "--threshold: 'abc' is not a number or a percentage"),
        ("--confidence", "40%", "--confidence: '40%' is outside 0.5 to 1"),
        ("--confidence", "1", "--confidence: '1' is ambiguous: write 1% or 0.01"),
        ("--threshold", "5", "--threshold: '5' is ambiguous: write 5% or 0.05"),
        ("--confidence", "100%", "--confidence: '100%' is outside 0.5 to 1"),
        ("--threshold", "nan", "--threshold: 'nan' is outside 0 to 10"),
    ],
)
def test_cli_bad_threshold_or_confidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    path = write(timed_report(BASE), tmp_path / "r.json")
    assert main(["diff", str(path), str(path), flag, value]) == 2
    assert message in capsys.readouterr().err


def test_sample_cap_quoted_in_the_advice_is_the_timing_stage_cap() -> None:
    from reporter import diff
    from reporter.profiling import measure

    assert diff.MAX_SAMPLES == measure.MAX_SAMPLES


def test_report_md_and_html_say_what_a_pair_of_runs_can_detect() -> None:
    from reporter.render.html import render_html
    from reporter.render.markdown import render_markdown

    report = timed_report(noisy_samples(random.Random(11), 120, 10.0, 0.05))
    found = single_run_detectable(report)
    assert found is not None
    figure = f"+{found.change * 100:.1f}%"
    md = render_markdown(report)
    assert f"can call a slowdown of the median worse from about **{figure}**" in md
    assert "120 samples per run" in md
    assert f"<b>{figure}</b>" in render_html(report)
