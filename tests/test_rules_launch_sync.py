"""Launch-bound and host-sync are one judgement each: the same step, described by a model
profile and by a trace built here, gives the same measure and the same verdict at the same
threshold through the profile's rule and the trace's rule."""

from __future__ import annotations

from pathlib import Path

from reporter.report import Finding, ModelInfo, Report
from reporter.report.trace import TraceSection
from reporter.rules import launch, run_rules, sync
from reporter.rules.launch import LaunchLimits, LaunchMeasure, is_launch_bound
from reporter.rules.sync import SyncLimits, SyncMeasure, sync_severity
from tests.test_rules_compute import _profile
from tests.test_trace_synthetic import analyse, kernel, op
from tests.test_trace_synthetic import launch as launch_call

CPU_RULE, GPU_RULE = "launch-bound", "gpu-launch-bound"


def _trace_report(section: TraceSection) -> Report:
    return Report(model=ModelInfo(class_name="trace", source="t.json"), kind="trace", trace=section)


def _fired(report: Report, rule_id: str, **overrides: float) -> list[Finding]:
    return [f for f in run_rules(report, overrides) if f.rule == rule_id]


# ---------------------------------------------------------------- launch-bound
def _tiny_ops(tmp_path: Path, ops: int, op_us: float) -> tuple[Report, Report]:
    """One step of ``ops`` ops of ``op_us`` each, as a profile and as a trace whose kernels
    start 6 µs after their 4 µs launch call began (no queue ahead of them)."""
    profile = _profile(ops=[("aten::add", ops, ops * op_us)], device="cuda:0")
    events = []
    for i in range(ops):
        events += [launch_call(i * 50, i + 1), kernel("add_kernel", i * 50 + 6, op_us, i + 1)]
    return profile, _trace_report(analyse(tmp_path, events))


def test_the_same_tiny_ops_give_the_same_measure_from_profile_and_trace(tmp_path: Path) -> None:
    profile, trace = _tiny_ops(tmp_path, 300, 5.0)
    from_profile = launch.profile_measure(profile.profile, {})
    from_trace = launch.trace_measure(trace.trace.ranks[0].gpu.launch)
    assert from_profile == LaunchMeasure(ops=300, mean_op_us=5.0)
    assert from_trace is not None
    assert (from_trace.ops, from_trace.tiny_share, from_trace.outpaced_share) == (300, 1.0, 0.0)
    assert from_trace.queue_us == 6.0


def test_profile_and_trace_agree_on_the_op_count_threshold(tmp_path: Path) -> None:
    """300 ops of 5 µs: launch-bound from either source while 300 ops are enough, from
    neither once the minimum is 301."""
    profile, trace = _tiny_ops(tmp_path, 300, 5.0)
    for least in (299, 300, 301):
        cpu = _fired(profile, CPU_RULE, **{"compute.tiny_op_calls": least})
        gpu = _fired(trace, GPU_RULE, **{"gpu.min_kernels": least})
        assert bool(cpu) == bool(gpu) == (least <= 300), least


def test_profile_and_trace_agree_that_long_ops_are_not_launch_bound(tmp_path: Path) -> None:
    for op_us, expected in ((5.0, True), (30.0, False)):
        profile, trace = _tiny_ops(tmp_path, 300, op_us)
        assert bool(_fired(profile, CPU_RULE)) == bool(_fired(trace, GPU_RULE)) == expected


def test_launch_judgement_reads_each_measured_figure() -> None:
    limits = LaunchLimits(min_ops=100, tiny_op_us=20.0, margin=0.05, tiny_share=0.5)
    assert is_launch_bound(LaunchMeasure(ops=200, mean_op_us=18.0), limits)
    assert not is_launch_bound(LaunchMeasure(ops=200, mean_op_us=19.5), limits)  # in the margin
    assert not is_launch_bound(LaunchMeasure(ops=200), limits)  # nothing says the ops are tiny
    assert not is_launch_bound(LaunchMeasure(ops=99, mean_op_us=1.0), limits)
    assert is_launch_bound(LaunchMeasure(ops=200, tiny_share=0.6), limits)
    queued = LaunchLimits(min_ops=100, tiny_share=0.5, max_queue_us=100.0)
    assert is_launch_bound(LaunchMeasure(ops=200, tiny_share=0.6, queue_us=100.0), queued)
    assert not is_launch_bound(LaunchMeasure(ops=200, tiny_share=0.6, queue_us=101.0), queued)


def test_profile_times_are_not_judged_from_one_step() -> None:
    one = _profile(ops=[("aten::add", 300, 300 * 5.0)], steps_us=(1000.0,))
    assert launch.profile_measure(one.profile, {}).mean_op_us is None
    assert _fired(one, CPU_RULE) == []


# ---------------------------------------------------------------- host-sync
def _item_loop(tmp_path: Path, reads: int) -> tuple[Report, Report]:
    """One step reading ``reads`` scalars from the device with .item(), each a stream sync
    of 20 µs, as a CUDA profile and as a trace of a 1 ms step."""
    profile = _profile(
        ops=[
            ("aten::item", reads, reads * 5.0),
            ("aten::_local_scalar_dense", reads, reads * 4.0),
            ("cudaStreamSynchronize", reads, reads * 20.0),
        ],
        device="cuda:0",
    )
    events = [
        op("ProfilerStep#1", 0, 1000, cat="user_annotation"),
        launch_call(1, 1),
        kernel("k", 5, 50, 1),
    ]
    for i in range(reads):
        at = 100 + 100 * i
        events += [
            op("aten::item", at, 30),
            op("aten::_local_scalar_dense", at + 1, 28),
            op("cudaStreamSynchronize", at + 2, 20, cat="cuda_runtime"),
        ]
    return profile, _trace_report(analyse(tmp_path, events))


def test_the_same_syncs_give_the_same_measure_from_profile_and_trace(tmp_path: Path) -> None:
    profile, trace = _item_loop(tmp_path, 8)
    from_profile = sync.profile_measure(profile)
    from_trace = sync.trace_measure(trace.trace.ranks[0])
    assert (from_profile.syncs, from_profile.per_step) == (from_trace.syncs, from_trace.per_step)
    assert from_profile.syncs == 8
    assert from_profile.time_share is None  # the profile's rule does not time its syncs
    assert from_trace.time_share is not None and from_trace.time_share > 0.05
    assert sync.sync_advice(from_profile) == sync.sync_advice(from_trace)
    for most in (7.0, 8.0):
        limits = SyncLimits(max_per_step=most, warning_share=0.05)
        assert sync_severity(from_profile, limits) == sync_severity(from_trace, limits)
    assert sync_severity(from_trace, SyncLimits(max_per_step=8.0)) is None


def test_profile_and_trace_rules_give_the_same_verdict_and_cause(tmp_path: Path) -> None:
    profile, trace = _item_loop(tmp_path, 8)
    (cpu,) = _fired(profile, "host-sync")
    (gpu,) = _fired(trace, "gpu-host-sync")
    assert cpu.severity == gpu.severity == "warning"
    assert cpu.evidence["cause"] == gpu.evidence["cause"] == ".item() in a loop (8 reads per step)"
    assert cpu.snippet == gpu.snippet
    # no sync at all: neither rule speaks
    quiet = _profile(ops=[("cudaDeviceSynchronize", 1, 30.0)], device="cuda:0")  # perfreport's own
    events = [op("ProfilerStep#1", 0, 200, cat="user_annotation"), launch_call(1, 1)]
    events.append(kernel("k", 5, 100, 1))
    assert (
        _fired(quiet, "host-sync")
        == _fired(_trace_report(analyse(tmp_path, events)), "gpu-host-sync")
        == []
    )


def test_sync_judgement() -> None:
    limits = SyncLimits(max_per_step=0, warning_share=0.05)
    assert sync_severity(SyncMeasure(syncs=0), limits) is None
    assert sync_severity(SyncMeasure(syncs=2, per_step=2.0), limits) == "warning"  # untimed
    timed = SyncMeasure(syncs=2, per_step=2.0, time_us=10.0, window_us=1000.0)
    assert sync_severity(timed, limits) == "info"  # 1% of the window
    assert sync_severity(SyncMeasure(syncs=3, time_us=100.0, window_us=1000.0), limits) == "warning"
    assert sync_severity(SyncMeasure(syncs=2, per_step=2.0), SyncLimits(max_per_step=2)) is None
