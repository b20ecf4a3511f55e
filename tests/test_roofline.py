"""Speed of light: regimes, per-op and per-model figures, the ceilings and the chart."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from reporter.report.roofline import MachinePeaks
from reporter.roofline.analysis import (
    OpCall,
    group_ops,
    memory_chains,
    model_figures,
    module_totals,
    regime,
    roofline_us,
)
from reporter.stages import StageContext, run_stage
from tests.helpers import subject_for

# A machine with round ceilings: 1 TFLOP/s, 100 GB/s, 5 µs per call.
PEAKS = MachinePeaks(device_name="test", peak_flops=1e12, peak_bytes_per_s=1e11, call_floor_us=5.0)


def call(name: str, flops: int, in_b: int, out_b: int, us: float, module: str = "m") -> OpCall:
    return OpCall(name, "[1]", module, flops, in_b, out_b, us)


def test_regimes_follow_the_largest_of_compute_memory_and_one_call() -> None:
    n = 4096  # a square float32 product: 2n³ FLOPs over 3 n² floats
    assert regime(2 * n**3, 3 * 4 * n * n, PEAKS) == "compute"
    m = 2**24  # an elementwise add: no FLOPs counted, 3 tensors of m floats
    assert regime(0, 3 * 4 * m, PEAKS) == "memory"
    assert regime(2, 12, PEAKS) == "overhead"  # a one-element op: below one call's cost
    # At the ridge (10 FLOP/byte) the two ceilings give the same time.
    assert roofline_us(10e6, 1e6, PEAKS) == pytest.approx(10.0)
    assert roofline_us(2 * n**3, 3 * 4 * n * n, PEAKS) == pytest.approx(2 * n**3 / 1e12 * 1e6)


def test_op_groups_sum_their_calls_against_a_hand_count() -> None:
    calls = [
        call("aten::mm", 2_000_000, 30_000, 10_000, 4.0),
        call("aten::mm", 2_000_000, 30_000, 10_000, 6.0, module="n"),
        call("aten::add", 0, 8_000, 4_000, 2.0),
    ]
    ops = {o.name: o for o in group_ops(calls, PEAKS)}
    mm = ops["aten::mm"]
    assert (mm.calls, mm.flops, mm.bytes, mm.time_us) == (2, 4_000_000, 80_000, 10.0)
    assert mm.intensity == pytest.approx(50.0)
    assert mm.achieved_flops == pytest.approx(4e6 / 10e-6)
    assert mm.bound_us == pytest.approx(4.0)  # 4e6 FLOPs at 1e12 FLOP/s
    assert mm.efficiency == pytest.approx(0.4)
    assert mm.module == "m (+1 more)"
    assert ops["aten::add"].intensity == 0.0 and ops["aten::add"].bound == "overhead"


def test_module_figures_include_children_and_the_model_row_is_the_total() -> None:
    calls = [
        call("aten::mm", 1000, 10, 10, 1.0, module="a.b"),
        call("aten::mm", 3000, 10, 10, 2.0, module="a"),
        call("aten::relu", 0, 10, 10, 4.0, module="c"),
    ]
    rows = {r.name: r for r in module_totals(calls, PEAKS, {"a": "Block"})}
    assert rows["a"].flops == 4000 and rows["a"].time_us == 3.0 and rows["a"].type == "Block"
    assert rows["a.b"].flops == 1000
    assert rows[""].flops == 4000 and rows[""].time_us == 7.0
    assert sum(rows[""].regime_us.values()) == pytest.approx(7.0)


def test_memory_bound_runs_in_one_module_are_fusion_candidates() -> None:
    big = 4 * 2**20
    calls = [
        call("aten::mul", 0, 2 * big, big, 50.0, "act"),
        call("aten::view", 0, 0, 0, 1.0, "act"),  # moves nothing: neither breaks nor joins
        call("aten::add", 0, 2 * big, big, 50.0, "act"),
        call("aten::tanh", 0, big, big, 50.0, "act"),
        call("aten::mm", 2 * 10**9, big, big, 3000.0, "act"),  # compute-bound: ends the run
        call("aten::mul", 0, 2 * big, big, 50.0, "act"),
    ]
    (chain,) = memory_chains(calls, PEAKS)
    assert chain.ops == ["aten::mul", "aten::add", "aten::tanh"]
    assert chain.time_us == 150.0
    # Fused, it reads the first op's inputs and writes the last op's output once.
    assert chain.fused_bound_us == pytest.approx((2 * big + big) / 1e11 * 1e6)


def test_model_figures_against_a_hand_count() -> None:
    calls = [call("aten::mm", 10**9, 10**6, 10**6, 2000.0), call("aten::add", 0, 10**8, 0, 1500.0)]
    fig = model_figures(calls, PEAKS, latency_ms=4.0)
    assert fig.achieved_flops == pytest.approx(10**9 / 4e-3)
    # Roofline times: 1 ms for the product (compute), 1 ms for the add (memory).
    assert fig.speed_of_light_ms == pytest.approx(2.0)
    assert fig.headroom == pytest.approx(2.0)
    assert fig.outside_ops_ms == pytest.approx(0.5)
    assert fig.regime_ms == pytest.approx({"compute": 2.0, "memory": 1.5, "overhead": 0.5})


class Regimes(nn.Module):
    """A large product, a large elementwise add and a tiny op repeated."""

    def __init__(self) -> None:
        super().__init__()
        self.mm = nn.Linear(512, 512, bias=False)

    def forward(self, x: torch.Tensor, big: torch.Tensor, tiny: torch.Tensor) -> Any:
        y = self.mm(x)
        z = big + big
        for _ in range(20):
            tiny = tiny * 1.0001
        return y, z, tiny


def _roofline_ctx(tmp: Path, source: str, stages: list[str]) -> StageContext:
    from reporter.options import RunOptions

    path = tmp / "m.py"
    path.write_text(source)
    subject = subject_for(path, tmp)
    opts = RunOptions(model_file=str(path), out_dir=str(tmp), stages=stages)
    return StageContext(subject=subject, options=opts)


REGIMES_FILE = """
import torch
from tests.test_roofline import Regimes
model = Regimes()
example_inputs = (torch.randn(512, 512), torch.randn(4_000_000), torch.ones(1))
"""


@pytest.fixture(scope="module")
def regimes_section(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any) -> Any:
    tmp = tmp_path_factory.mktemp("roofline")
    ctx = _roofline_ctx(tmp, REGIMES_FILE, ["timing", "roofline"])
    ctx.options.stage_options = {"timing": {"seconds": 0.2}}
    ctx.sections["timing"] = run_stage("timing", ctx)
    return run_stage("roofline", ctx), ctx


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("PERFREPORT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield mp
    mp.undo()


def test_real_ops_land_in_their_regime(regimes_section: Any) -> None:
    section, _ = regimes_section
    by_name = {o.name: o for o in section.ops}
    assert by_name["aten::mm"].bound == "compute"
    assert by_name["aten::mm"].flops == 2 * 512**3
    assert by_name["aten::add"].bound == "memory"
    # big + big: one input tensor (read once, a lower bound) and one output, float32.
    assert by_name["aten::add"].bytes == 2 * 4 * 4_000_000
    assert by_name["aten::mul"].bound == "overhead" and by_name["aten::mul"].calls == 20


def test_model_figures_of_a_real_run(regimes_section: Any) -> None:
    section, ctx = regimes_section
    model = section.model
    latency = ctx.sections["timing"].latency_ms.median
    assert model.flops == 2 * 512**3
    assert model.achieved_flops == pytest.approx(model.flops / (latency / 1000))
    # Speed of light is a lower bound on any measured time, op by op and in total.
    assert model.speed_of_light_ms <= latency
    assert all(o.bound_us <= o.time_us * (1 + 1e-9) or o.efficiency == 1.0 for o in section.ops)
    assert all(o.achieved_flops <= section.machine.peak_flops * (1 + 1e-9) for o in section.ops)
    assert sum(model.regime_ms.values()) == pytest.approx(max(latency, model.op_time_ms))


def test_measured_peaks_agree_with_an_independent_measurement(regimes_section: Any) -> None:
    section, _ = regimes_section
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    independent = 2 * n**3 / best
    measured = section.machine.measured_flops["float32"].value
    # Within a factor: both are best-of timings on a machine other work may share.
    assert independent / 4 < measured < independent * 4
    from reporter.roofline.peaks import copy_bytes

    src = torch.ones(copy_bytes(torch.device("cpu")) // 4)  # as large: past the caches
    dst = torch.empty_like(src)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    copy_rate = 2 * src.numel() * 4 / best
    assert copy_rate / 4 < section.machine.peak_bytes_per_s < copy_rate * 4


def test_peaks_are_cached_per_machine(
    regimes_section: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    import json

    from reporter.roofline.peaks import cache_path, machine_key, machine_peaks

    section, _ = regimes_section
    data = json.loads(cache_path().read_text())
    entry = data[machine_key(torch.device("cpu"))]
    assert (
        entry["measured_flops"]["float32"]["value"]
        == section.machine.measured_flops["float32"].value
    )
    # A second call reads the cache rather than measuring again.
    import reporter.roofline.peaks as peaks_module

    monkeypatch.setattr(peaks_module, "measure", lambda *a, **k: pytest.fail("measured again"))
    again = machine_peaks(torch.device("cpu"), [torch.float32])
    assert again.measured_on == section.machine.measured_on


def test_gpu_specs_are_matched_by_name() -> None:
    from reporter.roofline.specs import spec_for

    h100 = spec_for("NVIDIA H100 80GB HBM3")
    assert h100 is not None and h100[1] == pytest.approx(3.35e12)
    pcie = spec_for("NVIDIA H100 PCIe")
    assert pcie is not None and pcie[1] == pytest.approx(2.0e12)
    assert spec_for("Intel Xeon") is None


def test_the_chart_draws_ceilings_and_points_and_escapes_names() -> None:
    from reporter.render.charts import roofline_chart

    svg = roofline_chart(
        [("<script>x</script>", 50.0, 1e11, 0.5, "compute"), ("zero", 0.0, 0.0, 0.1, "memory")],
        peak_flops=1e12,
        peak_bytes_per_s=1e11,
    )
    assert svg.count("<circle") == 1  # the point with no intensity cannot sit on a log axis
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "compute ceiling" in svg and "memory ceiling" in svg


def test_roofline_rules_fire_on_constructed_sections() -> None:
    from reporter.report import ModelInfo, Report
    from reporter.report.roofline import RooflineSection
    from reporter.rules import run_rules

    calls = [call("aten::mul", 0, 8, 4, 40.0, "head") for _ in range(30)]
    calls += [call("aten::mm", 2 * 10**9, 10**7, 10**6, 20000.0, "body")]
    ops = group_ops(calls, PEAKS)
    fig = model_figures(calls, PEAKS, latency_ms=25.0)
    section = RooflineSection(machine=PEAKS, model=fig, ops=ops)
    report = Report(model=ModelInfo("M", "m.py"), roofline=section)
    rules = {f.rule for f in run_rules(report)}
    # 1.2 ms in 30 tiny calls + 3.8 ms between ops = 5 ms of 25: not overhead-bound.
    assert "overhead-bound" not in rules
    # The product: 2 ms at the roofline, 20 ms measured: 10% efficiency, 80% of op time.
    assert "compute-inefficient" in rules
    fig = model_figures(calls[:30], PEAKS, latency_ms=3.0)
    report.roofline = RooflineSection(machine=PEAKS, model=fig, ops=group_ops(calls[:30], PEAKS))
    assert "overhead-bound" in {f.rule for f in run_rules(report)}


def test_an_op_faster_than_the_memory_ceiling_is_bounded_by_its_own_time() -> None:
    # 1 MB moved in 5 µs is 200 GB/s, twice the ceiling: the tensors were in a cache.
    fast = call("aten::add", 0, 600_000, 400_000, 5.0)
    (op,) = group_ops([fast], PEAKS)
    assert roofline_us(0, 1_000_000, PEAKS) == pytest.approx(10.0)
    assert op.bound_us == pytest.approx(5.0) and op.efficiency == 1.0
    # Timed one by one the ops sum to 20 µs; the forward took 10 µs: scaled to it, the
    # speed of light never passes the latency.
    slow = call("aten::mm", 10**6, 1000, 1000, 15.0)
    fig = model_figures([fast, slow], PEAKS, latency_ms=0.010)
    assert fig.speed_of_light_ms <= 0.010


def test_mfu_is_training_flops_over_the_profiled_step_and_the_peak(
    tmp_path: Path, monkeypatch_module: Any
) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from reporter.options import RunOptions

    root = Path(__file__).resolve().parent.parent
    subject = subject_for(root / "sample_models" / "mlp.py", tmp_path)
    names = ["flops", "profile", "roofline"]
    opts = RunOptions(model_file=subject.source, out_dir=str(tmp_path), stages=names, train=True)
    ctx = StageContext(subject=subject, options=opts)
    for name in names:  # as the worker runs them: each sees the sections before it
        ctx.sections[name] = run_stage(name, ctx)
    sections = ctx.sections
    # The same training step counted here: forward, loss, backward of a copy in train mode.
    import copy

    model = copy.deepcopy(subject.model).train()
    with FlopCounterMode(display=False) as counter:
        out = model(*subject.args, **subject.kwargs)
        subject.loss_fn(out, subject.inputs).backward()
    step_s = sections["profile"].step_us_median / 1e6
    peak = sections["roofline"].machine.peak_flops
    assert sections["roofline"].model.mfu == pytest.approx(
        counter.get_total_flops() / step_s / peak
    )
