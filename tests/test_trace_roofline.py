"""The trace roofline: ops with FLOPs and shapes placed against a GPU's published peaks.

The traces are built here by hand, so every figure is worked out below from the numbers
put in (and the A100 data sheet's), not from the code under test.
"""

from __future__ import annotations

import gzip
import json
from math import prod
from pathlib import Path

import pytest

from reporter.report.trace import TraceRoofline
from reporter.roofline.specs import spec_for
from reporter.trace import analyse_paths
from reporter.trace.analyzers.roofline import input_bytes, shape_flops
from reporter.trace.events import OpShapes
from tests.conftest import TRACE_DATA
from tests.test_trace_synthetic import kernel, launch, op, write

A100 = {"deviceProperties": [{"id": 0, "name": "NVIDIA A100-SXM4-80GB", "computeMajor": 8}]}
FP32_PEAK = 19.5e12  # A100 data sheet, FP32 dense
BANDWIDTH = 2.039e12  # A100 SXM4 80GB, bytes/s

ADDMM_FLOPS = 2 * 64 * 1024 * 4096
ADDMM_BYTES = (4096 + 64 * 1024 + 1024 * 4096) * 4
MUL_FLOPS = 256 * 256
MUL_BYTES = 2 * 256 * 256 * 4
MM_FLOPS = 2 * 128 * 256 * 512  # no "flops" arg: from the shapes
MM_BYTES = (128 * 256 + 256 * 512) * 4


def gpu_events() -> list[dict]:
    dims = "Input Dims"
    types = "Input type"
    f32 = "float"
    return [
        op("aten::linear", 0, 100),  # no FLOPs: the addmm inside is the placed op
        op(
            "aten::addmm",
            5,
            90,
            flops=ADDMM_FLOPS,
            **{dims: [[4096], [64, 1024], [1024, 4096], [], []]},
            **{types: [f32, f32, f32, "Scalar", "Scalar"]},
        ),
        launch(10, 1, dur=4),
        kernel("ampere_sgemm_128x64_nn", 20, 50, 1),
        op("aten::mul", 120, 20, flops=MUL_FLOPS, **{dims: [[256, 256]] * 2, types: [f32] * 2}),
        launch(125, 2, dur=6),
        kernel("vectorized_elementwise_kernel", 130, 8, 2),
        op("aten::mul", 150, 20, flops=MUL_FLOPS, **{dims: [[256, 256]] * 2, types: [f32] * 2}),
        launch(155, 3, dur=5),
        kernel("vectorized_elementwise_kernel", 160, 10, 3),
        op("aten::mm", 180, 20, **{dims: [[128, 256], [256, 512]], types: [f32, f32]}),
        launch(185, 4, dur=5),
        kernel("ampere_sgemm_64x64_nn", 190, 12, 4),
        op("aten::add", 172, 5, flops=100, **{dims: [[10], [10]], types: [f32, f32]}),
        op("aten::add", 300, 5, flops=100, **{dims: [[10], [10]], types: [f32, f32]}),
    ]  # the window is the GPU ops' span, 20-202 µs: the add at 300 is outside


def roofline_of(tmp_path: Path, events: list[dict], **meta: object) -> TraceRoofline:
    section = analyse_paths([write(tmp_path, events, **meta)])
    r = section.ranks[0].roofline
    assert r is not None
    return r


def test_gpu_ops_are_placed_against_the_a100_data_sheet(tmp_path: Path) -> None:
    r = roofline_of(tmp_path, gpu_events(), **A100)
    assert r.machine is not None and r.model is not None
    assert r.machine.peak_flops == FP32_PEAK and r.machine.dtype == "float32"
    assert r.machine.peak_bytes_per_s == BANDWIDTH
    assert r.machine.call_floor_us == pytest.approx(5.0)  # median of launches 4, 6, 5, 5
    assert r.without_kernels == 1  # the add launched nothing
    assert any("1 op call with FLOPs launched no kernel" in n for n in r.notes)
    assert r.calls == 4
    by_name = {o.name: o for o in r.ops}
    assert set(by_name) == {"aten::addmm", "aten::mul", "aten::mm"}

    addmm = by_name["aten::addmm"]
    assert addmm.flops == ADDMM_FLOPS and addmm.bytes == ADDMM_BYTES
    assert addmm.time_us == pytest.approx(50.0)  # its kernel, not the op's 90 µs
    assert addmm.intensity == pytest.approx(ADDMM_FLOPS / ADDMM_BYTES)
    assert addmm.achieved_flops == pytest.approx(ADDMM_FLOPS / 50e-6)
    compute_us = ADDMM_FLOPS / FP32_PEAK * 1e6  # 27.5 µs, above bytes / bandwidth (8.4 µs)
    assert addmm.bound_us == pytest.approx(compute_us)
    assert addmm.efficiency == pytest.approx(compute_us / 50.0)
    assert addmm.bound == "compute"

    mul = by_name["aten::mul"]
    assert (mul.calls, mul.flops, mul.bytes) == (2, 2 * MUL_FLOPS, 2 * MUL_BYTES)
    assert mul.time_us == pytest.approx(18.0)
    assert mul.bound_us == pytest.approx(2 * MUL_BYTES / BANDWIDTH * 1e6)
    assert mul.bound == "overhead"  # 0.26 µs of traffic per call, a 5 µs launch each

    mm = by_name["aten::mm"]
    assert (mm.flops, mm.bytes) == (MM_FLOPS, MM_BYTES)
    assert mm.bound == "overhead"  # 1.7 µs of compute < one 5 µs launch

    m = r.model
    assert m.flops == ADDMM_FLOPS + 2 * MUL_FLOPS + MM_FLOPS
    assert m.op_time_ms == pytest.approx(0.080)
    sol_us = compute_us + 2 * MUL_BYTES / BANDWIDTH * 1e6 + MM_FLOPS / FP32_PEAK * 1e6
    assert m.speed_of_light_ms == pytest.approx(sol_us / 1000)
    assert m.regime_ms["compute"] == pytest.approx(0.050)
    assert m.regime_ms["overhead"] == pytest.approx(0.030)


def test_tf32_kernels_use_the_tf32_ceiling(tmp_path: Path) -> None:
    events = [
        e | {"name": "ampere_tf32_s1688gemm_128x128"} if e["name"].startswith("ampere_sgemm") else e
        for e in gpu_events()
    ]
    r = roofline_of(tmp_path, events, **A100)
    assert r.machine is not None
    assert r.machine.dtype == "tf32" and r.machine.peak_flops == 156e12


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        ({}, "no deviceProperties"),
        ({"deviceProperties": [{"id": 0, "name": "Some Future GPU"}]}, "Some Future GPU"),
    ],
)
def test_unknown_gpu_gets_no_ceilings_and_says_why(tmp_path: Path, meta: dict, why: str) -> None:
    r = roofline_of(tmp_path, gpu_events(), **meta)
    assert r.machine is None and r.model is None
    assert any(n.startswith("no roofline") and why in n for n in r.notes)
    addmm = next(o for o in r.ops if o.name == "aten::addmm")
    assert addmm.achieved_flops == pytest.approx(ADDMM_FLOPS / 50e-6)
    assert addmm.bound == ""


def test_cpu_only_trace_uses_op_durations_and_has_no_roofline(tmp_path: Path) -> None:
    events = [e for e in gpu_events() if e["cat"] == "cpu_op"]
    r = roofline_of(tmp_path, events)
    assert r.machine is None and r.model is None
    assert any("CPU-only" in n and "no published peak" in n for n in r.notes)
    assert r.time_source == "each op's duration"
    assert r.calls == 6  # addmm, two muls, mm, two adds: the window spans all host events
    addmm = next(o for o in r.ops if o.name == "aten::addmm")
    assert addmm.time_us == pytest.approx(90.0)
    assert addmm.achieved_flops == pytest.approx(ADDMM_FLOPS / 90e-6)


def test_an_op_with_flops_inside_another_counts_once(tmp_path: Path) -> None:
    events = [
        op("my::fused", 0, 50, flops=1000, **{"Input Dims": [[10]], "Input type": ["float"]}),
        op("aten::mm", 5, 40, **{"Input Dims": [[2, 3], [3, 4]], "Input type": ["float"] * 2}),
        launch(10, 1, dur=4),
        kernel("k", 20, 7, 1),
    ]
    r = roofline_of(tmp_path, events, **A100)
    assert [(o.name, o.flops, o.time_us) for o in r.ops] == [("my::fused", 1000, 7.0)]


def test_shape_formulas_and_input_bytes() -> None:
    assert shape_flops("aten::addmm", [[5], [2, 3], [3, 5], [], []]) == 2 * 2 * 3 * 5
    assert shape_flops("aten::bmm", [[4, 2, 3], [4, 3, 5]]) == 4 * 2 * 2 * 3 * 5
    assert shape_flops("aten::mm", [[2, 3], [4, 5]]) is None  # inner sizes differ
    shapes = OpShapes(None, [[2, 3], [3], [], [7]], ["c10::BFloat16", "double", "Scalar", "?"])
    assert input_bytes(shapes) == 2 * 3 * 2 + 3 * 8  # the scalar and unknown dtype add 0


def test_spec_table_is_torch_free_and_matched_by_name() -> None:
    assert spec_for("NVIDIA A100-SXM4-80GB") == (
        {"float32": 19.5e12, "tf32": 156e12, "bfloat16": 312e12, "float16": 312e12},
        2.039e12,
    )


@pytest.mark.parametrize(
    "name", ["cpu_mlp_training.json.gz", "two_rank_rank0.json.gz", "a100_alexnet.json.gz"]
)
def test_real_traces_are_read(name: str) -> None:
    """No real trace here carries "flops"; those with shapes place their matrix products."""
    section = analyse_paths([TRACE_DATA / name])
    r = section.ranks[0].roofline
    if r is not None:
        assert r.calls > 0 or r.notes
        for o in r.ops:
            assert o.flops >= 0 and o.bytes >= 0 and o.time_us >= 0


def _matrix_products_by_hand(path: Path) -> tuple[int, int, float]:
    """A separate pass over the raw JSON: the outermost mm/addmm/bmm/baddbmm ops, the
    kernels whose launch call lies inside them (by correlation id), FLOPs from shapes."""
    with gzip.open(path) as fh:
        events = [e for e in json.load(fh)["traceEvents"] if e.get("ph") == "X"]
    names = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
    ops = [e for e in events if e.get("cat") == "cpu_op" and e["name"] in names]

    def inside(a: dict, b: dict) -> bool:
        return a is not b and b["ts"] <= a["ts"] and a["ts"] + a["dur"] <= b["ts"] + b["dur"]

    def same_thread(a: dict, b: dict) -> bool:
        return (a["pid"], a["tid"]) == (b["pid"], b["tid"])

    outer = [o for o in ops if not any(same_thread(o, p) and inside(o, p) for p in ops)]
    launches = {
        e["args"]["correlation"]: e
        for e in events
        if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})
    }
    times: dict[int, float] = {}
    flops = 0
    for k in (e for e in events if e.get("cat") == "kernel"):
        call = launches.get(k["args"].get("correlation"))
        op = next((o for o in outer if call and same_thread(call, o) and inside(call, o)), None)
        if op is None:
            continue
        if id(op) not in times:
            a, b = [d for d in op["args"]["Input Dims"] if d][-2:]
            flops += 2 * prod(a) * b[-1]  # (m,k)@(k,n) or (B,m,k)@(B,k,n)
        times[id(op)] = times.get(id(op), 0.0) + k["dur"]
    return len(times), flops, sum(times.values())


def test_real_trace_products_match_a_separate_pass() -> None:
    """two_rank_rank0 has shapes (no "flops" arg, no deviceProperties): its matrix products
    are found, timed by their kernels and counted as a pass over the raw events does."""
    path = TRACE_DATA / "two_rank_rank0.json.gz"
    r = analyse_paths([path]).ranks[0].roofline
    assert r is not None and r.machine is None
    calls, flops, time_us = _matrix_products_by_hand(path)
    assert calls == 377  # every one launched its kernels inside the analysed window
    assert (r.calls, r.flops) == (calls, flops)
    assert r.time_us == pytest.approx(time_us)


def test_launches_without_kernel_events_give_no_roofline(tmp_path: Path) -> None:
    events = [e for e in gpu_events() if e["cat"] != "kernel"]
    r = roofline_of(tmp_path, events, **A100)
    assert r.calls == 0 and not r.ops and r.machine is None
    assert any("no kernel events" in n for n in r.notes)


def test_hostile_op_names_are_escaped(tmp_path: Path) -> None:
    from reporter.cli import main

    evil = "<img src=x onerror=alert(1)>|*"
    events = [e | {"name": evil} if e["name"] == "aten::addmm" else e for e in gpu_events()]
    out = tmp_path / "out"
    assert main(["trace", str(write(tmp_path, events, **A100)), "-o", str(out), "-q"]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Roofline" in html and "Roofline" in md
    assert "compute ceiling" in html and "<circle" in html  # the chart, drawn by the view
    assert evil not in html and "&lt;img src=x" in html
    assert evil not in md


def test_flops_without_shapes_name_what_is_missing(tmp_path: Path) -> None:
    events = [op("aten::addmm", 0, 90, flops=ADDMM_FLOPS), launch(10, 1), kernel("k", 20, 50, 1)]
    r = roofline_of(tmp_path, events, **A100)
    assert r.machine is None and r.calls == 1
    assert r.ops[0].bytes == 0 and r.ops[0].intensity is None
    assert any("no 'Input type'" in n for n in r.notes)
