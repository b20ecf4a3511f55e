"""The timing stage and the batch sweep: statistics recomputed from the raw samples,
limits that stop the sweep, and a measurement checked against a known duration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reporter.options import RunOptions
from reporter.profiling.contention import timing_noise
from reporter.profiling.measure import measure, precise_enough, stable_window
from reporter.profiling.stats import (
    knee,
    latency_stats,
    median_interval,
    noise_reason,
    profiler_overhead,
)
from reporter.profiling.sweep import SweepLimits, batch_size, peak_memory, run_sweep, with_batch
from reporter.report import ModelInfo, Report, StageStatus
from reporter.report.profile import (
    BatchSweep,
    KernelTime,
    LatencyStats,
    ModuleTime,
    OpTime,
    ProfileSection,
    SweepPoint,
    TimingSection,
)
from reporter.stages import StageContext, run_stage
from tests.helpers import subject_for

MODEL = """
import torch
from torch import nn


def build_model():
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


def example_inputs():
    return torch.randn(6, 64)
"""


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, StageContext]:
    tmp = tmp_path_factory.mktemp("timing")
    path = tmp / "mlp.py"
    path.write_text(MODEL)
    subject = subject_for(path, tmp)
    opts = RunOptions(
        model_file=subject.source,
        out_dir=str(tmp),
        stage_options={"timing": {"seconds": 0.3}},
    )
    ctx = StageContext(subject=subject, options=opts)
    profile = run_stage("profile", ctx)
    ctx.sections["profile"] = profile
    timing = run_stage("timing", ctx)
    return profile, timing, ctx


def test_statistics_recomputed_from_the_raw_samples(timed: Any) -> None:
    _, t, _ = timed
    s = np.array(t.samples_ms)
    assert len(s) >= 5
    lat = t.latency_ms
    assert lat.min <= lat.median <= lat.p90 <= lat.p99 <= lat.max
    assert lat.median == pytest.approx(np.median(s))
    assert lat.p90 == pytest.approx(np.percentile(s, 90))
    assert lat.p99 == pytest.approx(np.percentile(s, 99))
    assert (lat.min, lat.max) == (s.min(), s.max())
    assert lat.iqr == pytest.approx(np.percentile(s, 75) - np.percentile(s, 25))
    assert lat.cv == pytest.approx(s.std() / s.mean())
    assert (lat.median_low, lat.median_high) == median_interval(list(s))
    assert lat.median_low <= lat.median <= lat.median_high
    assert t.batch_size == 6
    assert t.throughput == pytest.approx(6 / (lat.median / 1e3))
    assert t.noisy == bool(timing_noise(lat, len(s), t.warmup_stable, t.counters))
    assert noise_reason(lat) in t.noise_reason


def test_profiler_overhead_is_profiled_step_over_latency(timed: Any) -> None:
    profile, t, _ = timed
    # Timing runs before the profile stage; the parent divides once both are in.
    assert t.profiler_overhead is None
    assert profiler_overhead(profile, t.latency_ms.median) == pytest.approx(
        np.median(profile.step_us) / 1e3 / t.latency_ms.median
    )
    assert profiler_overhead(None, t.latency_ms.median) is None


def test_measure_recovers_a_known_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake clock that advances exactly 0.2 ms per call: blocks, division and counts."""
    from reporter.profiling import measure as measure_module

    clock = [100.0]
    monkeypatch.setattr(measure_module.time, "perf_counter", lambda: clock[0])

    def call() -> None:
        clock[0] += 0.0002

    never_precise = lambda samples: False  # noqa: E731
    monkeypatch.setattr(measure_module, "precise_enough", never_precise)
    m = measure(call, torch.device("cpu"), budget_s=0.1)
    assert m.warmup_calls == 10 and m.warmup_stable  # two equal windows of 5
    assert m.number == 5  # blocks of at least 1 ms
    assert len(m.samples_ms) == 100  # 0.1 s / (5 x 0.2 ms)
    assert m.samples_ms == pytest.approx([0.2] * 100)
    assert m.seconds == pytest.approx(0.1) and not m.stopped_early


def test_measure_stops_at_a_quarter_of_its_budget_once_the_median_is_precise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Equal samples pin the median exactly: measuring stops at 25% of the budget."""
    from reporter.profiling import measure as measure_module

    clock = [100.0]
    monkeypatch.setattr(measure_module.time, "perf_counter", lambda: clock[0])

    def call() -> None:
        clock[0] += 0.0002

    m = measure(call, torch.device("cpu"), budget_s=0.1)
    assert m.stopped_early
    assert len(m.samples_ms) == 25  # 0.025 s of 1 ms blocks
    assert m.seconds == pytest.approx(0.025)


def test_median_interval_matches_the_published_order_statistics() -> None:
    """95% ranks (1-based) from the binomial tables: n=6 -> 1 and 6, n=20 -> 6 and 15,
    n=100 -> 40 and 61; below 6 samples no interval reaches 95%."""
    assert median_interval(list(range(5))) is None
    assert median_interval(list(range(6))) == (0, 5)
    assert median_interval(list(range(20))[::-1]) == (5, 14)
    assert median_interval(list(range(100))) == (39, 60)


def test_median_interval_covers_the_true_median_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    true_median = np.log(2)  # of the unit exponential: skewed, like latencies
    for n in (6, 15, 60):
        hits = 0
        for _ in range(2000):
            lo, hi = median_interval(list(rng.exponential(size=n)))
            hits += lo <= true_median <= hi
        assert 0.945 <= hits / 2000 <= 0.99, n


def test_precise_enough_is_a_half_width_of_one_percent() -> None:
    assert precise_enough([100.0] * 5 + [101.0])  # interval 100-101: +-0.5%
    assert not precise_enough([100.0] * 5 + [103.0])  # interval 100-103: +-1.5%
    assert not precise_enough([100.0] * 5)  # too few samples for a 95% interval


def test_slow_calls_warm_up_with_shorter_windows() -> None:
    """Two 5-call windows of a 40 ms call do not fit in 0.1 s: single calls are compared."""
    assert stable_window(0.1, 0.04) == 1
    assert stable_window(0.1, 0.0001) == 5
    assert stable_window(0.1, 0.01) == 5
    assert stable_window(0.1, 0.02) == 2


def test_measure_on_the_real_clock_never_reports_less_than_the_work() -> None:
    def two_ms() -> None:
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass

    m = measure(two_ms, torch.device("cpu"), budget_s=0.1)
    assert min(m.samples_ms) >= 2.0
    assert float(np.median(m.samples_ms)) < 20.0  # generous: CI machines are shared


def test_noisy_flag() -> None:
    steady = latency_stats([1.0] * 50 + [1.01] * 50)
    assert noise_reason(steady) == ""
    spiky = latency_stats([1.0] * 90 + [5.0] * 10)
    assert "p99" in noise_reason(spiky) and "variation" in noise_reason(spiky)


def test_knee_is_the_first_batch_near_the_best_throughput() -> None:
    # 90% of the best (385) is 346.5: batch 4 (350) is the first to reach it
    assert knee([1, 2, 4, 8, 16], [100, 190, 350, 380, 385]) == 4
    assert knee([1, 2, 4], [10, 20, 40]) == 4
    assert knee([], []) is None


def test_with_batch_cycles_rows_of_batch_inputs_only() -> None:
    x = torch.arange(6).reshape(3, 2)
    mask = torch.ones(5)  # first dim differs from the batch: left alone
    args, kwargs = with_batch((x, mask), {"y": torch.tensor([7, 8, 9])}, 5)
    assert batch_size(args, kwargs) == 5
    assert args[0].tolist() == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    assert args[1] is mask
    assert kwargs["y"].tolist() == [7, 8, 9, 7, 8]
    assert batch_size((), {"a": torch.tensor(3.0)}) == 1


def _mlp() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    return model.eval(), (torch.randn(3, 64),)


FAST = {"point_seconds": 0.01, "seconds": 30.0}


def test_sweep_stops_at_the_largest_batch() -> None:
    model, args = _mlp()
    sweep = run_sweep(model, args, {}, torch.device("cpu"), SweepLimits(max_batch=4, **FAST))
    assert [p.batch for p in sweep.points] == [1, 2, 4]
    assert "largest batch" in sweep.stop_reason
    assert sweep.knee_batch in [1, 2, 4]
    for p in sweep.points:
        assert p.throughput == pytest.approx(p.batch / (p.latency_ms / 1e3))
        # inputs + the two 256-wide activations live at once, at least
        assert p.peak_memory_bytes >= p.batch * (64 + 256 + 256) * 4
    peaks = [p.peak_memory_bytes for p in sweep.points]
    assert peaks == sorted(peaks)


def test_sweep_stops_at_the_memory_limit() -> None:
    model, args = _mlp()
    cpu = torch.device("cpu")

    def peak(batch: int) -> int:
        a, _ = with_batch(args, {}, batch)
        with torch.inference_mode():
            return peak_memory(lambda: model(*a), cpu, a[0].numel() * 4)

    limit = (peak(4) + peak(8)) // 2
    sweep = run_sweep(model, args, {}, cpu, SweepLimits(max_batch=1024, memory_bytes=limit, **FAST))
    assert [p.batch for p in sweep.points] == [1, 2, 4]
    assert "memory limit" in sweep.stop_reason and "8" in sweep.stop_reason
    assert all(p.peak_memory_bytes <= limit for p in sweep.points)


def test_sweep_stops_at_the_time_limit() -> None:
    model, args = _mlp()
    limits = SweepLimits(max_batch=1 << 20, seconds=0.5, point_seconds=0.1)
    start = time.perf_counter()
    sweep = run_sweep(model, args, {}, torch.device("cpu"), limits)
    took = time.perf_counter() - start
    assert "time limit" in sweep.stop_reason
    assert sweep.points and sweep.points[-1].batch < 1 << 20
    # no batch starts once the limit is (about to be) passed; a started one may finish
    assert all(p.started_s < limits.seconds for p in sweep.points)
    starts = [p.started_s for p in sweep.points]
    assert starts == sorted(starts) and starts[-1] < took


def _report_with(profile: ProfileSection, timing: TimingSection) -> Report:
    return Report(
        model=ModelInfo(class_name="Net", source="net.py"),
        stages={"profile": StageStatus("ok"), "timing": StageStatus("ok")},
        profile=profile,
        timing=timing,
    )


def test_sections_render_escaped_with_inline_charts(tmp_path: Path) -> None:
    from reporter.render import write_report
    from reporter.report import load_report

    evil = "<script>alert(1)</script>"
    profile = ProfileSection(
        mode="inference",
        device="cuda:0",
        trace_files=["trace/perfreport.1.pt.trace.json.gz"],
        schedule={"wait": 1, "warmup": 1, "active": 3},
        step_us=[1000.0, 1100.0, 900.0],
        step_us_median=1000.0,
        modules=[
            ModuleTime("", "Net", 0, 1, 900.0, 100.0, 0.9),
            ModuleTime(f"blocks.{evil}", "Linear", 1, 1, 800.0, 800.0, 0.8),
        ],
        top_ops=[OpTime("aten::addmm", 1, 700.0, 710.0, "matmul/conv", "4×32, 32×32")],
        ops_by_name=[OpTime("aten::addmm", 1, 700.0, 710.0, "matmul/conv")],
        categories_us={"matmul/conv": 700.0, "other": 0.0},
        kernels=[KernelTime(f"void gemm<{evil}>", 3, 400.0, "matmul/conv")],
        kernel_categories_us={"matmul/conv": 400.0},
        peak_memory_bytes=1 << 20,
    )
    timing = TimingSection(
        latency_ms=LatencyStats(0.5, 0.6, 0.7, 0.4, 0.8),
        throughput=8000.0,
        batch_size=4,
        samples_ms=[0.4, 0.5, 0.5, 0.6, 0.8],
        sweep=BatchSweep(
            points=[SweepPoint(1, 0.3, 3333.3, 1000), SweepPoint(2, 0.4, 5000.0, 2000)],
            knee_batch=2,
            stop_reason="reached the largest batch asked for (2)",
        ),
    )
    written = write_report(_report_with(profile, timing), tmp_path, ("html", "json", "md"))
    html = (tmp_path / "report.html").read_text()
    assert evil not in html and "&lt;script&gt;" in html
    assert html.count("<svg") >= 4  # categories, kernels, modules, samples, sweep
    assert "knee" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    md = (tmp_path / "report.md").read_text()
    assert "### Profile" in md and "### Latency" in md and "(knee)" in md
    # rates keep their thousands apart; fewer than 6 samples give no interval of the median
    assert "8,000.0 samples/s" in html and "**8,000.0 samples/s**" in md
    assert "| 5,000.0 |" in md and "95% interval" not in md
    again = load_report(tmp_path / "report.json")
    assert again.timing.latency_ms.median == 0.5
    assert again.timing.sweep.points[1].throughput == 5000.0
    assert again.profile.modules[1].name == f"blocks.{evil}"
    assert len(written) == 3


def test_warm_up_takes_at_least_the_minimum_number_of_calls(timed: Any) -> None:
    _, t, _ = timed
    assert t.method.startswith("Timed first in the model process")
    assert t.warmup_iterations >= 2
    # A call slower than the whole warm-up budget: the minimum number of calls decides.
    slow = lambda: time.sleep(0.02)  # noqa: E731
    cpu = torch.device("cpu")
    assert measure(slow, cpu, budget_s=0.01, min_warmup_calls=1).warmup_calls == 1
    assert measure(slow, cpu, budget_s=0.01).warmup_calls == 2
