"""Where and in what state the latency is measured: the timing stage runs first in the
model process, --threads reaches torch there, and the allocator experiment's processes
get their environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reporter import pipeline
from reporter.cli import main
from reporter.options import RunOptions
from reporter.profiling import allocator
from reporter.report import STAGE_NAMES, ModelInfo, Report
from reporter.report.profile import LatencyStats, TimingSection
from reporter.report.timing_counters import TimingCounters
from reporter.worker import run_order

# The batch is the thread count torch has while the model file runs, and an environment
# variable can change it: the report's batch size shows what the model process saw.
MODEL = """
import os
import torch
from torch import nn


def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def example_inputs():
    extra = int(os.environ.get("PERFREPORT_TEST_EXTRA_ROWS", "0"))
    return torch.randn(torch.get_num_threads() + extra, 16)
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("threads") / "tiny.py"
    path.write_text(MODEL)
    return path


def options(path: Path, **kw: Any) -> RunOptions:
    return RunOptions(
        model_file=str(path),
        out_dir=str(path.parent / "out"),
        stage_options={"timing": {"seconds": 0.2}},
        **kw,
    )


def test_timing_runs_first_whatever_the_selection() -> None:
    assert run_order(STAGE_NAMES)[0] == "timing"
    assert run_order(["summary", "flops"]) == ["summary", "flops"]
    assert run_order(["flops", "profile", "timing"]) == ["timing", "flops", "profile"]


def test_threads_reach_the_model_process_and_timing_runs_before_other_stages(
    model_file: Path,
) -> None:
    started: list[str] = []

    def progress(event: str, stage: str, status: Any) -> None:
        if event == "start":
            started.append(stage)

    report = pipeline.run_model(
        options(model_file, threads=1, stages=["summary", "flops", "timing"]), progress
    )
    # load, then timing before the stages that run the model under instrumentation
    assert started[:2] == ["load", "timing"]
    assert started.index("summary") > started.index("timing")
    assert list(report.stages)[: len(STAGE_NAMES)] == list(STAGE_NAMES)
    assert report.stages["timing"].status == "ok"
    env = report.environment
    assert (env.num_threads, env.torch_threads) == (1, 1)
    t = report.timing
    assert t.batch_size == 1 and t.threads == 1  # torch had 1 thread when the file ran
    # page faults and CPU time of the timed calls are in the report
    c = t.counters
    assert c is not None and c.threads == 1
    assert c.calls == len(t.samples_ms) * t.iterations_per_sample
    assert c.minor_faults >= 0 and c.minor_faults_per_call == c.minor_faults / c.calls
    assert c.cpu_user_s + c.cpu_system_s > 0
    assert t.allocator.startswith("glibc malloc") or t.allocator in ("jemalloc", "tcmalloc")


def test_a_fresh_timing_process_gets_the_extra_environment(model_file: Path) -> None:
    opts = options(model_file, threads=2, stages=list(STAGE_NAMES))
    env = {**allocator.GLIBC_ENV, "PERFREPORT_TEST_EXTRA_ROWS": "3"}
    timing = pipeline._time_in_fresh_process(opts, env)
    assert timing.batch_size == 2 + 3
    assert timing.allocator == (
        "glibc malloc (MALLOC_MMAP_THRESHOLD_=33554432, MALLOC_TRIM_THRESHOLD_=268435456, "
        "MALLOC_TOP_PAD_=67108864)"
    )


def test_threads_must_be_positive(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    assert main([str(model_file), "--threads", "0", "-o", str(model_file.parent / "x")]) == 2
    assert "--threads 0: give 1 or more" in capsys.readouterr().err


def fault_counters(faults: float) -> TimingCounters:
    return TimingCounters(
        wall_s=1.0,
        calls=100,
        threads=2,
        cpus=2,
        cpu_user_s=1.5,
        cpu_system_s=0.3,
        minor_faults=int(faults * 100),
        minor_faults_per_call=faults,
        system_per_wall=0.3,
    )


@pytest.mark.parametrize(
    ("faults", "device", "thresholds", "runs"),
    [
        (800, "cpu", {}, True),
        (10, "cpu", {}, False),
        (800, "cuda", {}, False),
        (800, "cpu", {"timing.faults_per_call": 1000}, False),  # from --config
    ],
)
def test_allocator_experiment_runs_when_page_faults_cost(
    monkeypatch: pytest.MonkeyPatch,
    faults: float,
    device: str,
    thresholds: dict[str, float],
    runs: bool,
) -> None:
    monkeypatch.setattr(allocator, "library_dirs", lambda: [])
    calls: list[dict[str, str]] = []

    def fresh(opts: RunOptions, env: dict[str, str]) -> TimingSection:
        calls.append(env)
        m = 2.0 if env else 4.0
        return TimingSection(
            latency_ms=LatencyStats(median=m, p90=m, p99=m, min=m, max=m),
            throughput=1,
            batch_size=1,
        )

    monkeypatch.setattr(pipeline, "_time_in_fresh_process", fresh)
    report = Report(model=ModelInfo(class_name="Net", source="net.py"))
    report.timing = TimingSection(
        latency_ms=LatencyStats(median=4.0, p90=4, p99=4, min=4, max=4),
        throughput=1,
        batch_size=1,
        device=device,
        counters=fault_counters(faults),
    )
    opts = RunOptions(model_file="m.py", out_dir="o")
    opts.stage_options["timing"] = {"thresholds": thresholds}
    pipeline._finish_timing(opts, report, lambda *_: None)
    exp = report.timing.allocator_experiment
    assert (exp is not None) == runs
    if runs:
        assert calls == [{}, allocator.GLIBC_ENV]
        assert exp.variants[0].speedup == pytest.approx(2.0)
