"""Compute rules on profiles built here: measured times would make the tests depend on
how busy the machine is."""

from __future__ import annotations

from reporter.report import (
    Finding,
    LayerRow,
    ModelInfo,
    ParameterTotals,
    Report,
    SummarySection,
    TensorSpec,
)
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
from reporter.rules import run_rules


def _profile(
    modules: list[tuple[str, str, float, float]] = (),
    ops: list[tuple[str, int, float]] = (),
    *,
    steps_us: tuple[float, ...] = (1000.0, 1000.0),
    device: str = "cpu",
    categories: dict[str, float] | None = None,
    kernels: list[str] = (),
) -> Report:
    """A report whose profile is built here: modules as (name, type, total_us, self_us)
    per step, ops as (name, calls per step, self_us per step), the profiled steps' times."""
    step = sum(steps_us) / len(steps_us)
    report = Report(model=ModelInfo(class_name="X", source="x.py", device=device))
    report.profile = ProfileSection(
        mode="inference",
        device=device,
        trace_files=[],
        step_us=list(steps_us),
        modules=[
            ModuleTime(name, type_, name.count(".") + 1, 1, total, self_us, total / step)
            for name, type_, total, self_us in modules
        ],
        ops_by_name=[OpTime(name, calls, us, us) for name, calls, us in ops],
        categories_us=categories or {},
        kernels=[KernelTime(k, 1, 1.0) for k in kernels],
    )
    return report


def _rules(report: Report) -> dict[str, Finding]:
    return {f.rule: f for f in run_rules(report)}


def test_hot_module_names_the_deepest_clear_culprit() -> None:
    # Sequential(Linear, ReLU, Linear 4096x4096, Linear): the big Linear takes 80%
    layers = [("0", "Linear", 50.0, 50.0), ("1", "ReLU", 10.0, 10.0)]
    layers += [("2", "Linear", 800.0, 800.0), ("3", "Linear", 40.0, 40.0)]
    finding = _rules(_profile(layers))["hot-module"]
    assert finding.target == "2" and finding.severity == "warning"
    assert finding.evidence["share"] == "80.0%"
    # twelve equal layers of about 8% each: nothing to flag
    equal = [(str(i), "Linear", 80.0, 80.0) for i in range(12)]
    assert "hot-module" not in _rules(_profile(equal))


def test_a_body_of_equal_blocks_is_not_a_hot_module() -> None:
    """Like GPT-2: a wrapper takes most of the step, spread over twelve equal blocks."""
    blocks = [(f"0.{i}", "Linear", 70.0, 70.0) for i in range(12)]
    body = [("0", "Sequential", 860.0, 20.0), *blocks, ("1", "Linear", 30.0, 30.0)]
    assert "hot-module" not in _rules(_profile(body))  # 86% but no block nor own code is hot
    # one heavy block inside the same wrapper is flagged, not the wrapper
    heavy = [("0", "Sequential", 900.0, 20.0), ("0.0", "Linear", 60.0, 60.0)]
    heavy += [("0.1", "Linear", 60.0, 60.0), ("0.2", "Linear", 60.0, 60.0)]
    heavy += [("0.3", "Linear", 700.0, 700.0), ("1", "Linear", 40.0, 40.0)]
    finding = _rules(_profile(heavy))["hot-module"]
    assert finding.target == "0.3" and finding.severity == "warning"


def test_a_share_is_judged_with_the_noise_taken_out() -> None:
    """Interference only adds time: the mean step's excess over the quickest step (here
    50 µs) may sit inside any module. 40% threshold, 5% margin: the share must stay above
    42% with the excess taken out of the module and of the step."""
    steps = (950.0, 1050.0)
    rest = [("0", "Linear", 250.0, 250.0), ("1", "Linear", 200.0, 200.0)]
    clear = _rules(_profile([("2", "Linear", 500.0, 500.0), *rest], steps_us=steps))
    assert clear["hot-module"].severity == "warning"  # (500 - 50) / 950 = 47%
    assert clear["hot-module"].evidence["share_without_noise"].startswith("at least 47.4%")
    near = _rules(_profile([("2", "Linear", 440.0, 440.0), *rest], steps_us=steps))
    assert "hot-module" not in near  # 44% measured, 41% without the excess: not said
    # no step-to-step spread: the margin alone decides
    quiet = (1000.0, 1000.0)
    assert "hot-module" in _rules(_profile([("2", "Linear", 430.0, 430.0), *rest], steps_us=quiet))
    assert "hot-module" not in _rules(
        _profile([("2", "Linear", 415.0, 415.0), *rest], steps_us=quiet)
    )
    # a disturbance that landed inside one module in one step: 55% measured, 10% without it
    spike = _rules(_profile([("2", "Linear", 1100.0, 1100.0), *rest], steps_us=(1000.0, 3000.0)))
    assert "hot-module" not in spike
    # steps 700 and 1,300 µs: the profile was disturbed (mean 30% above the quickest,
    # more than 25%): even 90% measured, 86% without the excess, is not judged
    disturbed = _rules(_profile([("2", "Linear", 900.0, 900.0), *rest], steps_us=(700.0, 1300.0)))
    assert "hot-module" not in disturbed
    calmer = _rules(_profile([("2", "Linear", 900.0, 900.0), *rest], steps_us=(800.0, 1200.0)))
    assert "hot-module" in calmer  # 20% above the quickest: (900 - 200) / 800 = 88%
    # one profiled step: no quickest step to compare with, time shares are not judged
    one = _rules(_profile([("2", "Linear", 900.0, 900.0), *rest], steps_us=(1000.0,)))
    assert "hot-module" not in one


def test_memory_bound_and_launch_bound() -> None:
    cats = {"elementwise": 700.0, "reductions": 100.0, "matmul/conv": 200.0}
    ops = [("aten::sin", 150, 300.0), ("aten::mul", 150, 300.0), ("aten::add", 150, 300.0)]
    found = _rules(_profile(ops=ops, categories=cats))
    assert found["memory-bound-ops"].severity == "warning"  # 80% > 42%
    assert found["launch-bound"].severity == "warning"  # 450 ops of 2 µs < 19 µs
    assert found["launch-bound"].evidence["ops_per_step"] == "450"
    # MLP-like: three big matmuls
    big = [("aten::addmm", 3, 900.0), ("aten::relu", 2, 60.0)]
    cats = {"matmul/conv": 900.0, "elementwise": 60.0}
    assert not {"memory-bound-ops", "launch-bound"} & set(
        _rules(_profile(ops=big, categories=cats))
    )
    # 19.5 µs per op against the 20 µs threshold: within the 5% margin, not said; 18 µs is
    near = [("aten::sin", 300, 300 * 19.5)]
    assert "launch-bound" not in _rules(_profile(ops=near, categories=cats))
    assert "launch-bound" in _rules(_profile(ops=[("aten::sin", 300, 300 * 18.0)]))
    # With the roofline stage's op-by-op figures, its rules judge these instead.
    from reporter.report.roofline import MachinePeaks, RooflineModel, RooflineSection

    report = _profile(ops=ops, categories={"elementwise": 700.0, "reductions": 100.0})
    peaks = MachinePeaks("cpu", peak_flops=1e11, peak_bytes_per_s=1e10, call_floor_us=2.0)
    report.roofline = RooflineSection(
        machine=peaks, model=RooflineModel(0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0)
    )
    assert not {"memory-bound-ops", "launch-bound"} & set(_rules(report))


def test_host_sync_only_for_device_syncs() -> None:
    """A CPU .item() waits for nothing; on CUDA an .item() without a device sync read a
    CPU tensor."""
    item = [("aten::item", 1, 5.0), ("aten::_local_scalar_dense", 1, 4.0)]
    assert "host-sync" not in _rules(_profile(ops=item))
    assert "host-sync" not in _rules(_profile(ops=item, device="cuda:0"))
    # perfreport's own synchronize after each profiled step is not the model's
    own = [("cudaDeviceSynchronize", 1, 30.0)]
    assert "host-sync" not in _rules(_profile(ops=own, device="cuda:0"))
    syncs = [("cudaStreamSynchronize", 1, 20.0), ("cudaDeviceSynchronize", 1, 30.0)]
    finding = _rules(_profile(ops=item + syncs, device="cuda:0"))["host-sync"]
    assert finding.severity == "warning"
    assert finding.evidence["cause"] == ".item() / float() / int() on a device tensor"
    assert "loss.detach()" in finding.snippet


def _sync(ops: list[tuple[str, int, float]], **kw: object) -> Finding:
    return _rules(_profile(ops=ops + [("cudaStreamSynchronize", 1, 20.0)], device="cuda:0", **kw))[
        "host-sync"
    ]


def test_host_sync_advice_follows_what_synced() -> None:
    # detector-style: boolean-mask indexing (aten::index runs nonzero on the mask)
    masked = _sync([("aten::index", 2, 10.0), ("aten::nonzero", 2, 30.0)])
    assert "boolean-mask indexing" in masked.evidence["cause"]
    assert "torch.where" in masked.snippet and "nonzero_static" in masked.snippet
    # .item() in a Python loop
    loop = _sync([("aten::item", 32, 60.0), ("aten::_local_scalar_dense", 32, 50.0)])
    assert loop.evidence["cause"] == ".item() in a loop (32 reads per step)"
    assert ".tolist()" in loop.snippet
    # `if tensor:`: is_nonzero calls item, which calls _local_scalar_dense
    cond = [("aten::is_nonzero", 1, 3.0), ("aten::item", 1, 2.0)]
    cond += [("aten::_local_scalar_dense", 1, 1.0)]
    assert "torch.where" in _sync(cond).snippet
    # .cpu() / .tolist(): a device-to-host copy
    copy = _sync([("aten::to", 1, 5.0)], kernels=["Memcpy DtoH (Device -> Pageable)"])
    assert copy.evidence["cause"].startswith("copies to the host")
    assert "non_blocking=True" in copy.snippet
    # HF's padding check: input_ids without attention_mask, one read per forward
    report = _profile(
        ops=[("aten::item", 1, 5.0), ("cudaStreamSynchronize", 1, 20.0)], device="cuda:0"
    )
    report.model.inputs = [TensorSpec("input_ids", [1, 8], "int64", "cuda:0")]
    hf = _rules(report)["host-sync"]
    assert "attention_mask" in hf.evidence["cause"] and "attention_mask=" in hf.snippet


def _gpu_report(tf32: bool, matmul_us: float) -> Report:
    report = Report(model=ModelInfo(class_name="X", source="x.py", device="cuda:0"))
    report.model.parameters = ParameterTotals(
        total=10, trainable=10, frozen=0, bytes=40, by_dtype={"float32": 10}
    )
    report.environment.cuda = {"tf32_matmul": tf32, "float32_matmul_precision": "highest"}
    report.profile = ProfileSection(
        mode="inference",
        device="cuda:0",
        trace_files=[],
        step_us=[1000.0, 1000.0],
        kernel_categories_us={"matmul/conv": matmul_us, "elementwise": 100.0},
    )
    return report


def test_fp32_matmul_on_gpu_both_ways() -> None:
    assert "fp32-matmul-on-gpu" in {f.rule for f in run_rules(_gpu_report(False, 900.0))}
    assert "fp32-matmul-on-gpu" not in {f.rule for f in run_rules(_gpu_report(True, 900.0))}
    assert "fp32-matmul-on-gpu" not in {f.rule for f in run_rules(_gpu_report(False, 10.0))}


def _timing(points: list[tuple[int, float]], batch: int, noisy: bool = False) -> Report:
    report = Report(model=ModelInfo(class_name="X", source="x.py"))
    stats = LatencyStats(median=1.0, p90=1.1, p99=1.2, min=0.9, max=1.3, cv=0.02)
    sweep = BatchSweep(
        points=[SweepPoint(b, b / t, t) for b, t in points],
        knee_batch=max(points, key=lambda p: p[1])[0],
    )
    report.timing = TimingSection(
        latency_ms=stats,
        throughput=1000.0,
        batch_size=batch,
        sweep=sweep,
        noisy=noisy,
        noise_reason="coefficient of variation 30% > 10%" if noisy else "",
    )
    return report


def test_throughput_still_rising_both_ways() -> None:
    rising = _timing([(1, 100.0), (2, 190.0), (4, 350.0), (8, 600.0)], batch=2)
    finding = next(f for f in run_rules(rising) if f.rule == "throughput-still-rising")
    assert finding.evidence["best_batch"] == 8
    flat = _timing([(1, 100.0), (2, 104.0), (4, 106.0)], batch=2)
    assert "throughput-still-rising" not in {f.rule for f in run_rules(flat)}


def test_noisy_timing_both_ways() -> None:
    assert "noisy-timing" in {f.rule for f in run_rules(_timing([(1, 1.0)], 1, noisy=True))}
    assert "noisy-timing" not in {f.rule for f in run_rules(_timing([(1, 1.0)], 1, noisy=False))}


def test_one_of_several_equal_blocks_counts_as_its_twins() -> None:
    """Four equal blocks (same type and parameters) do the same work: one at 52% of the
    step while its twins take 12% each was disturbed, and counts at their median."""
    blocks = [("blocks.0", "Block", 120.0, 5.0), ("blocks.1", "Block", 125.0, 5.0)]
    blocks += [("blocks.2", "Block", 520.0, 5.0), ("blocks.3", "Block", 118.0, 5.0)]
    report = _profile(blocks + [("head", "Linear", 117.0, 117.0)])
    assert _rules(report)["hot-module"].target == "blocks.2"  # no parameter counts: no twins
    rows = [LayerRow(name, t, 2, [], 1000, "yes", False) for name, t, _, _ in blocks]
    report.summary = SummarySection(depth=2, layers=rows)
    assert "hot-module" not in _rules(report)
    # layers of one type but different sizes are not twins: the big one stays hot
    layers = [("0", "Linear", 100.0, 100.0), ("1", "Linear", 700.0, 700.0)]
    layers += [("2", "Linear", 60.0, 60.0), ("3", "Linear", 40.0, 40.0)]
    report = _profile(layers)
    report.summary = SummarySection(
        depth=1,
        layers=[
            LayerRow(n, t, 1, [], p, "yes", True)
            for (n, t, _, _), p in zip(layers, (10, 50, 5, 2), strict=True)
        ],
    )
    assert _rules(report)["hot-module"].target == "1"


def test_noisy_timing_is_a_finding_only_clear_of_the_limits() -> None:
    from reporter.profiling.stats import noise_reason
    from reporter.report.profile import LatencyStats, TimingSection

    def rules_for(cv: float, extra: str = "") -> set[str]:
        stats = LatencyStats(median=10.0, p90=11.0, p99=12.0, min=9.0, max=13.0, cv=cv)
        reason = "; ".join(r for r in (noise_reason(stats), extra) if r)
        timing = TimingSection(latency_ms=stats, throughput=100.0, batch_size=1)
        timing.noisy, timing.noise_reason = bool(reason), reason
        return set(_rules(Report(model=ModelInfo("M", "m.py"), timing=timing)))

    assert "noisy-timing" not in rules_for(0.05)  # quiet
    assert "noisy-timing" not in rules_for(0.11)  # just past 10%: flips between runs
    assert "noisy-timing" in rules_for(0.20)  # clearly noisy
    assert "noisy-timing" in rules_for(0.11, "CPUs oversubscribed")  # another cause
