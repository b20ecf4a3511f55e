"""Trace formats across PyTorch generations and the figures defined like the peer tools'.

The hand-made PyTorch 1.8-style trace (tests/data/traces/handmade/torch18_style.json) has
figures worked out by hand below; the real traces are checked against a separate pass over
their raw JSON, and against themselves rewritten with the old category names.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reporter.errors import UsageError
from reporter.report.trace import TraceSection
from reporter.trace import analyse_paths
from tests.conftest import REPO, TRACE_DATA

OLD = TRACE_DATA / "handmade" / "torch18_style.json"
# PyTorch 1.8-1.9 spelling -> the one Kineto writes today
MODERN = {
    "Operator": "cpu_op",
    "Runtime": "cuda_runtime",
    "Kernel": "kernel",
    "Memcpy": "gpu_memcpy",
    "Memset": "gpu_memset",
    "Python": "python_function",
}
OLD_NAMES = {new: old for old, new in MODERN.items()}


def load(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def write(tmp_path: Path, doc: dict[str, Any] | list[Any], name: str = "t.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def renamed(doc: dict[str, Any], names: dict[str, str], every: int = 1) -> dict[str, Any]:
    """The trace with categories renamed (every ``every``-th event only: a mixed trace)."""
    out = copy.deepcopy(doc)
    for k, e in enumerate(out["traceEvents"]):
        if k % every == 0 and isinstance(e, dict) and e.get("cat") in names:
            e["cat"] = names[e["cat"]]
    return out


def figures(section: TraceSection) -> list[dict[str, Any]]:
    """Every figure of every rank, without the file name."""
    out = []
    for r in section.ranks:
        d = dataclasses.asdict(r)
        d.pop("file")
        out.append(d)
    return out


# --------------------------------------------------------------------------- old format


def test_torch18_trace_figures_by_hand() -> None:
    s = analyse_paths([OLD])
    r = s.ranks[0]
    g = r.gpu
    assert g is not None and r.step_count == 2
    # Window: step 1 starts at 0, step 2 ends at 300; no GPU op launched in the steps ends
    # later (the DtoH copy ends at 296).
    assert r.window_us == 300.0
    # Kernels [80,130], [190,220], [260,290]; copies [135,145], [295,296]; memset [150,155].
    assert (g.kernel_count, g.busy_us, g.active_us) == (3, 110.0, 126.0)
    assert g.utilisation == pytest.approx(110 / 300)
    b = g.breakdown
    assert (b.compute_us, b.memcpy_us, b.memset_us, b.idle_us) == (110.0, 11.0, 5.0, 174.0)
    assert g.memcpy.count == 2 and g.memcpy.pageable_count == 1
    assert [st.gpu_busy_us for st in r.steps] == [
        60.0,
        50.0,
    ]  # [80,130]+[190,200]; [200,220]+[260,290]
    assert not any("no GPU activity" in n for n in s.notes)


def test_torch18_data_loading_wall_clock_and_exposed() -> None:
    r = analyse_paths([OLD]).ranks[0]
    # DataLoader ranges (Operator category in 1.8): [2,62] and [202,242] = 100 µs;
    # long_kernel runs [190,220], so 18 µs of the second are overlapped by GPU work.
    assert r.dataloader_us == 100.0 and r.dataloader_share == pytest.approx(100 / 300)
    assert r.dataloader_exposed_us == 82.0
    assert r.dataloader_exposed_share == pytest.approx(82 / 300)
    assert [(st.dataloader_us, st.dataloader_exposed_us) for st in r.steps] == [
        (60.0, 60.0),
        (40.0, 22.0),
    ]


def test_torch18_syncs_only_the_real_one() -> None:
    syncs = analyse_paths([OLD]).ranks[0].syncs
    # item() at 292 holds a DtoH copy to pageable memory and a stream sync: one sync, at
    # the op. The item() at 64 holds no runtime call (a CPU tensor): not a sync.
    assert [(x.kind, x.op, x.count) for x in syncs.sites] == [
        ("DtoH copy to pageable memory", "aten::item", 1)
    ]
    assert syncs.blocking_calls == 1 and syncs.blocking_us == 3.0  # cudaMemcpyAsync 2 + sync 1
    assert syncs.per_step == 0.5 and syncs.value_reads_without_sync == 1


def test_a_cpu_copy_waits_once(tmp_path: Path) -> None:
    # .cpu(): aten::to > aten::copy_ holds a DtoH copy into pageable memory and a stream
    # sync; a second .cpu() later is a second sync. A bare stream sync outside any op
    # is a third.
    events = [
        op("ProfilerStep#1", 0, 300, cat="user_annotation"),
        launch(1, 1),
        gpu_op("k", 5, 50, 1),
        op("aten::to", 60, 40),
        op("aten::copy_", 61, 38),
        op("cudaMemcpyAsync", 62, 20, cat="cuda_runtime", correlation=2),
        gpu_op("Memcpy DtoH (Device -> Pageable)", 70, 10, 2, cat="gpu_memcpy"),
        op("cudaStreamSynchronize", 85, 5, cat="cuda_runtime"),
        op("aten::to", 150, 40),
        op("aten::copy_", 151, 38),
        op("cudaStreamSynchronize", 152, 30, cat="cuda_runtime"),
        op("cudaStreamSynchronize", 250, 7, cat="cuda_runtime"),
    ]
    syncs = analyse_paths([write(tmp_path, {"traceEvents": events})]).ranks[0].syncs
    assert syncs.blocking_calls == 3 and syncs.in_steps == 3
    assert syncs.blocking_us == 20 + 5 + 30 + 7
    assert sorted((x.kind, x.op, x.count, x.total_us) for x in syncs.sites) == [
        ("DtoH copy to pageable memory", "aten::to", 1, 25.0),
        ("cudaStreamSynchronize", "", 1, 7.0),
        ("cudaStreamSynchronize", "aten::to", 1, 30.0),
    ]


def test_torch18_sm_efficiency_occupancy_and_queue() -> None:
    r = analyse_paths([OLD]).ranks[0]
    g = r.gpu
    assert g is not None
    # tb-profiler: SM efficiency = ∫ min(Σ blocks/SM, 1) dt / window. No kernels overlap:
    # 50·min(2,1) + 30·0.25 + 30·0.5 = 72.5 over the 300 µs of the steps.
    assert g.tb_window_us == 300.0 and g.tb_utilisation == pytest.approx(110 / 300)
    assert g.sm_efficiency == pytest.approx(72.5 / 300)
    # Occupancy weighted by kernel time: (50·50% + 30·10% + 30·25%) / 110.
    assert g.occupancy == pytest.approx((50 * 0.5 + 30 * 0.1 + 30 * 0.25) / 110)
    rows = {k.name: k for k in r.top_kernels}
    k = rows["implicit_convolve_sgemm"]
    assert (k.blocks_per_sm, k.warps_per_sm, k.sm_efficiency, k.occupancy) == (2.0, 16.0, 1.0, 0.5)
    assert rows["long_kernel"].sm_efficiency == 0.25
    # HTA's queue on stream 7: +1 at each launch call, -1 at the op's start:
    # 72+ 80- 107+ 112+ 120+ 135- 150- 190- 250+ 260- 294+ 295- -> 1,0,1,2,3,2,1,0,1,0,1,0
    (stream,) = g.streams.streams
    assert (stream.stream, stream.queue_mean, stream.queue_max) == (7, 1.0, 3)
    # HTA's launch delay: op start - launch call end, 0 when negative:
    # 80-77, 135-111, 150-114, 190-123, 260-255, max(0, 295-296) = 3, 24, 36, 67, 5, 0
    launch = g.launch
    assert launch.launch_to_start_median_us == pytest.approx((5 + 24) / 2)
    assert launch.launch_to_start_mean_us == pytest.approx(135 / 6)
    assert launch.launch_to_start_max_us == 67.0


@pytest.mark.parametrize("fast", [True, False], ids=["msgspec", "stdlib"])
def test_old_new_and_mixed_spellings_give_the_same_figures(tmp_path: Path, fast: bool) -> None:
    doc = load(OLD)
    old = figures(analyse_paths([OLD], fast=fast))
    new = write(tmp_path, renamed(doc, MODERN), "new.json")
    mixed = write(tmp_path, renamed(doc, MODERN, every=2), "mixed.json")
    upper = write(tmp_path, renamed(doc, {c: c.upper() for c in MODERN}), "upper.json")
    for path in (new, mixed, upper):
        assert figures(analyse_paths([path], fast=fast)) == old, path.name


def test_real_trace_with_old_category_names_gives_the_same_figures(tmp_path: Path) -> None:
    doc = load(TRACE_DATA / "v100_training_rank0.json.gz")
    old = renamed(doc, OLD_NAMES)
    for e in old["traceEvents"]:
        if e.get("cat") in ("Kernel", "Memcpy", "Memset"):
            e["tid"] = f"stream {e['tid']}"  # as 1.8 named GPU threads
    assert {e.get("cat") for e in old["traceEvents"]} >= {"Operator", "Runtime", "Kernel"}
    before = figures(analyse_paths([TRACE_DATA / "v100_training_rank0.json.gz"]))
    assert figures(analyse_paths([write(tmp_path, old)])) == before


def test_kernels_under_any_spelling_are_gpu_activity(tmp_path: Path, cli: Any) -> None:
    # Only GPU events, no runtime calls or ops at all.
    events = [
        {"ph": "X", "cat": cat, "name": f"k{i}", "pid": 0, "tid": 7, "ts": 1000 + 100 * i,
         "dur": 50, "args": {"device": 0, "stream": 7}}
        for i, cat in enumerate(["Kernel", "kernel", "KERNEL"])
    ]  # fmt: skip
    path = write(tmp_path, {"traceEvents": events})
    s = analyse_paths([path])
    g = s.ranks[0].gpu
    assert g is not None and g.kernel_count == 3 and g.busy_us == 150.0
    assert g.utilisation == pytest.approx(150 / 250)  # first to last op: no steps
    assert not any("no GPU activity" in n for n in s.notes)
    result = cli("trace", path, "-o", tmp_path / "out", "--format", "json")
    assert result.code == 0 and "no GPU activity" not in result.out + result.err


# --------------------------------------------------------------------------- shapes


def op(name: str, ts: float, dur: float, cat: str = "cpu_op", tid: int = 1, **args: Any) -> dict:
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur,
            "args": args}  # fmt: skip


def gpu_op(name: str, ts: float, dur: float, corr: int | None, cat: str = "kernel") -> dict:
    args: dict[str, Any] = {"device": 0, "stream": 7}
    if corr is not None:
        args["correlation"] = corr
    return {"ph": "X", "cat": cat, "name": name, "pid": 0, "tid": 7, "ts": ts, "dur": dur,
            "args": args}  # fmt: skip


def launch(ts: float, corr: int) -> dict:
    return op("cudaLaunchKernel", ts, 2, cat="cuda_runtime", correlation=corr)


def test_kernels_outside_the_steps_are_left_out(tmp_path: Path) -> None:
    events = [
        launch(-50, 1),
        gpu_op("before", -40, 10, 1),  # before the first step
        op("ProfilerStep#1", 0, 100, cat="user_annotation"),
        launch(10, 2),
        gpu_op("inside", 20, 20, 2),
        launch(150, 3),
        gpu_op("after", 160, 10, 3),  # launched after the last step
    ]
    r = analyse_paths([write(tmp_path, {"traceEvents": events})]).ranks[0]
    assert r.window_us == 100.0 and r.gpu.kernel_count == 1 and r.gpu.busy_us == 20.0
    assert [k.name for k in r.top_kernels] == ["inside"]


def test_no_steps_window_is_first_to_last_gpu_op(tmp_path: Path) -> None:
    events = [op("aten::mm", 0, 30), launch(1, 1), gpu_op("k", 40, 10, 1), launch(2, 2),
              gpu_op("k", 70, 10, 2)]  # fmt: skip
    s = analyse_paths([write(tmp_path, {"traceEvents": events})])
    r = s.ranks[0]
    assert r.window_us == 40.0 and r.gpu.busy_us == 20.0
    # tb-profiler's window without steps is the host ops' span: [0, 30].
    assert r.gpu.tb_window_us == 30.0 and r.gpu.tb_utilisation == 0.0
    assert any("no ProfilerStep" in n for n in s.notes)


def test_pure_cpu_trace_has_no_gpu_figures_and_no_syncs(tmp_path: Path) -> None:
    events = [
        op("ProfilerStep#1", 0, 100, cat="user_annotation"),
        op("aten::item", 10, 5),
        op("aten::_local_scalar_dense", 11, 3),
        op("aten::mm", 20, 50),
    ]
    s = analyse_paths([write(tmp_path, {"traceEvents": events})])
    r = s.ranks[0]
    assert r.gpu is None and r.syncs.sites == [] and r.syncs.blocking_calls == 0
    assert any("no GPU activity" in n for n in s.notes)


def test_gpu_ops_without_a_stream_are_one_stream(tmp_path: Path) -> None:
    events = [
        {"ph": "X", "cat": "kernel", "name": "a", "pid": 0, "ts": 0, "dur": 10, "args": {}},
        {"ph": "X", "cat": "kernel", "name": "b", "pid": 0, "ts": 5, "dur": 10},
    ]
    g = analyse_paths([write(tmp_path, {"traceEvents": events})]).ranks[0].gpu
    (stream,) = g.streams.streams
    assert (stream.kernels, stream.busy_us) == (2, 15.0)
    assert g.streams.concurrent_us == 0.0


def test_gloo_collectives_are_host_side_communication(tmp_path: Path) -> None:
    events = [
        op("ProfilerStep#1", 0, 100, cat="user_annotation"),
        op("ProfilerStep#2", 100, 100, cat="user_annotation"),
        op("gloo:all_reduce", 20, 30, tid=2),
        op("gloo:all_reduce", 40, 30, cat="user_annotation", tid=3),  # overlaps [40,50]
        op("gloo:broadcast", 150, 10, tid=2),
        op("gloo:all_reduce", 300, 10, tid=2),  # after the steps
        op("aten::add", 0, 10),
    ]
    s = analyse_paths([write(tmp_path, {"traceEvents": events})])
    r = s.ranks[0]
    # Union in the window: [20,70] + [150,160] = 60 µs of 200.
    assert r.host_comm_us == 60.0 and r.host_comm_share == pytest.approx(0.3)
    assert [(c.name, c.count, c.total_us) for c in r.host_collectives] == [
        ("gloo:all_reduce", 2, 60.0),
        ("gloo:broadcast", 1, 10.0),
    ]
    assert s.overall.host_comm_us == 60.0


@pytest.mark.parametrize(
    ("name", "cat"),
    [
        ("enumerate(DataPipe)#ShufflerIterDataPipe", "user_annotation"),
        ("enumerate(DataPipe)#MapperIterDataPipe", "cpu_op"),
        ("enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__", "cpu_op"),
        ("torch/utils/data/dataloader.py(628): __next__", "python_function"),
    ],
)
def test_data_loading_however_recorded(tmp_path: Path, name: str, cat: str) -> None:
    events = [
        op("ProfilerStep#1", 0, 100, cat="user_annotation"),
        op(name, 10, 40, cat=cat),
        launch(60, 1),
        gpu_op("k", 30, 50, 1),  # runs [30,80]: overlaps [30,50] of the data loading
    ]
    r = analyse_paths([write(tmp_path, {"traceEvents": events})]).ranks[0]
    assert r.dataloader_us == 40.0 and r.dataloader_exposed_us == 20.0
    assert r.dataloader_exposed_share == pytest.approx(0.2)


# --------------------------------------------------------------------------- bad traces


def bad_times_doc(bad: int, good: int, kind: str) -> dict[str, Any]:
    events = [op("aten::add", 10 * i, 5) for i in range(good)]
    for i in range(bad):
        e = op(f"bad_{i}", 10 * i, 5)
        if kind == "nan":
            e["ts"] = float("nan")
        elif kind == "string":
            e["ts"] = "1700000000000000"
        else:
            e["dur"] = -5
        events.append(e)
    return {"traceEvents": events}


@pytest.mark.parametrize("kind", ["nan", "string", "negative"])
def test_mostly_bad_times_exit_2_on_one_line(tmp_path: Path, kind: str, cli: Any) -> None:
    path = write(tmp_path, bad_times_doc(bad=5, good=1, kind=kind))
    with pytest.raises(UsageError) as info:
        analyse_paths([path])
    message = str(info.value)
    assert "\n" not in message and "5 of 6 timed events" in message and "bad_" in message
    result = cli("trace", path, "-o", tmp_path / "out")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "unusable times" in result.err


@pytest.mark.parametrize("kind", ["nan", "string", "negative"])
def test_a_few_bad_times_are_left_out_and_named(tmp_path: Path, kind: str) -> None:
    s = analyse_paths([write(tmp_path, bad_times_doc(bad=1, good=5, kind=kind))])
    assert [o.count for o in s.ranks[0].cpu_ops] == [5]
    (note,) = [n for n in s.notes if "unusable times" in n]
    assert note.startswith("1 events were left out") and "bad_0 ×1" in note


def test_a_few_bad_times_are_a_finding_naming_them(tmp_path: Path) -> None:
    import reporter.rules  # noqa: F401  (registers every rule)
    from reporter.report import ModelInfo, Report
    from reporter.rules.registry import run_rules

    doc = bad_times_doc(bad=2, good=5, kind="negative")
    section = analyse_paths([write(tmp_path, doc)])
    rep = Report(model=ModelInfo(class_name="t", source="t"), kind="trace", trace=section)
    (f,) = [f for f in run_rules(rep, {}) if f.rule == "trace-bad-events"]
    assert f.title.startswith("2 trace events left out")
    assert f.evidence["names"] == ["bad_0 ×1", "bad_1 ×1"] and f.evidence["events"] == 2
    clean = analyse_paths([write(tmp_path, bad_times_doc(bad=0, good=5, kind="nan"), "ok.json")])
    rep = Report(model=ModelInfo(class_name="t", source="t"), kind="trace", trace=clean)
    assert [f for f in run_rules(rep, {}) if f.rule == "trace-bad-events"] == []


# --------------------------------------------------------------------------- real traces


def tb_sm_figures(path: Path) -> tuple[float, float]:
    """tb-profiler's SM efficiency and occupancy, recomputed from the raw events: the first
    step's start to the last step's end; per instant min(Σ blocks per SM, 1)."""
    events = [e for e in load(path)["traceEvents"] if e.get("ph") == "X"]
    steps = [e for e in events if str(e.get("name", "")).startswith("ProfilerStep#")]
    lo = min(e["ts"] for e in steps)
    hi = max(e["ts"] + e["dur"] for e in steps)
    kernels = [e for e in events if e.get("cat") == "kernel"]
    points = sorted({lo, hi, *(t for e in kernels for t in (e["ts"], e["ts"] + e["dur"]))})
    points = [p for p in points if lo <= p <= hi]
    sm = 0.0
    for a, b in zip(points, points[1:], strict=False):
        mid = (a + b) / 2
        level = sum(
            e["args"]["blocks per SM"]
            for e in kernels
            if e["ts"] <= mid < e["ts"] + e["dur"] and e["args"].get("blocks per SM", 0) > 0
        )
        sm += min(level, 1.0) * (b - a)
    occ = weight = 0.0
    for e in kernels:
        d = min(hi, e["ts"] + e["dur"]) - max(lo, e["ts"])
        if d > 0 and e["args"].get("est. achieved occupancy %", -1) >= 0:
            occ += e["args"]["est. achieved occupancy %"] / 100 * d
            weight += d
    return sm / (hi - lo), occ / weight


def test_sm_efficiency_and_occupancy_on_a_real_trace() -> None:
    # tb-profiler 0.4.3 on this file: 0.2076 and 21.04%.
    path = TRACE_DATA / "two_rank_rank0.json.gz"
    g = analyse_paths([path]).ranks[0].gpu
    sm, occ = tb_sm_figures(path)
    assert g.sm_efficiency == pytest.approx(sm, rel=1e-6)
    assert g.occupancy == pytest.approx(occ, rel=1e-6)


@pytest.mark.parametrize(
    "name", ["v100_training_rank0.json.gz", "a100_nccl_training.json.gz", "a100_alexnet.json.gz"]
)
def test_busy_time_never_exceeds_gpu_op_time_in_the_window(name: str) -> None:
    r = analyse_paths([TRACE_DATA / name]).ranks[0]
    g = r.gpu
    clipped = g.breakdown.compute_us + g.breakdown.communication_us
    assert g.busy_us == pytest.approx(clipped)
    assert g.busy_us <= g.active_us <= r.window_us
    assert g.busy_us <= g.kernel_sum_us + 1e-6


def test_trace_command_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from reporter.cli import main\n"
        f"rc = main(['trace', {str(OLD)!r}, '-o', {str(tmp_path / 'out')!r}])\n"
        "assert rc == 0, rc\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- scale


def test_batched_decoding_gives_the_same_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reporter.trace import decode

    doc = load(TRACE_DATA / "v100_training_rank0.json.gz")
    # Half the GPU ops lose their correlation id, so their launches are found through
    # the ac2g flows (decoded again from the text on the batched path); one event is
    # not an object at all.
    gpu = [e for e in doc["traceEvents"] if e.get("cat") in ("kernel", "gpu_memcpy")]
    for e in gpu[::2]:
        del e["args"]["correlation"]
    doc["traceEvents"].insert(100, 42)
    path = write(tmp_path, doc)
    whole = analyse_paths([path])
    assert whole.ranks[0].gpu is not None
    assert any("linked to their launch by ac2g flow" in n for n in whole.notes)
    monkeypatch.setattr(decode, "LARGE_TRACE_BYTES", 0)
    monkeypatch.setattr(decode, "BATCH", 997)
    batched = analyse_paths([path])
    assert figures(batched) == figures(whole)
    assert batched.notes == whole.notes


def test_ranks_in_worker_processes_give_the_same_figures() -> None:
    pair = [TRACE_DATA / "two_rank_rank0.json.gz", TRACE_DATA / "two_rank_rank1.json.gz"]
    one = analyse_paths(pair, jobs=1)
    two = analyse_paths(pair, jobs=2)
    assert figures(two) == figures(one)
    assert dataclasses.asdict(two.overall) == dataclasses.asdict(one.overall)
    assert two.notes == one.notes and two.files == one.files


def test_a_bad_file_in_a_worker_is_one_line(tmp_path: Path) -> None:
    good = TRACE_DATA / "two_rank_rank0.json.gz"
    bad = write(tmp_path, bad_times_doc(bad=3, good=0, kind="nan"), "bad.json")
    with pytest.raises(UsageError) as info:
        analyse_paths([good, bad], jobs=2)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)


def test_rocm_trace_is_read_like_a_cuda_one() -> None:
    path = TRACE_DATA / "rocm" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
    events = [e for e in load(path)["traceEvents"] if e.get("ph") == "X"]
    steps = [e for e in events if str(e.get("name", "")).startswith("ProfilerStep#")]
    lo = min(e["ts"] for e in steps)
    s = analyse_paths([path])
    r = s.ranks[0]
    hi = lo + r.window_us
    assert hi >= max(e["ts"] + e["dur"] for e in steps) - 1e-6
    kernels = [e for e in events if e.get("cat") == "kernel" and lo <= e["ts"] < hi]
    assert r.gpu is not None and r.gpu.kernel_count == len(kernels) > 0
    syncs = [e for e in events if e.get("name") == "hipDeviceSynchronize" and lo <= e["ts"] <= hi]
    assert r.syncs.blocking_calls == len(syncs)
    # HTA's queue counts hipLaunchKernel, hipExtModuleLaunchKernel, hipMemcpyWithStream.
    assert all(st.queue_max is not None for st in r.gpu.streams.streams)
    assert r.gpu.launch.launch_to_start_median_us is not None
    assert not any("no GPU activity" in n or "could not be linked" in n for n in s.notes)


def test_per_kernel_sm_figures_merge_across_ranks_by_time() -> None:
    pair = [TRACE_DATA / "two_rank_rank0.json.gz", TRACE_DATA / "two_rank_rank1.json.gz"]
    s = analyse_paths(pair)
    top = s.top_kernels[0]
    rows = [k for r in s.ranks for k in r.top_kernels if k.name == top.name]
    assert len(rows) == 2 and top.occupancy is not None
    expected = sum(k.occupancy * k.total_us for k in rows) / sum(k.total_us for k in rows)
    assert top.occupancy == pytest.approx(expected)
    assert min(k.occupancy for k in rows) <= top.occupancy <= max(k.occupancy for k in rows)


def test_worker_processes_only_for_enough_json(tmp_path: Path) -> None:
    import os

    from reporter.trace import POOL_MIN_BYTES, choose_jobs, json_size

    big = tmp_path / "a.json.gz"
    big.write_bytes(gzip.compress(b" " * (POOL_MIN_BYTES // 2 + 1)))
    assert json_size(big) == POOL_MIN_BYTES // 2 + 1 and big.stat().st_size < 100_000
    small = write(tmp_path, {"traceEvents": []}, "b.json")
    assert choose_jobs([big]) == 1  # one file: nothing to share out
    assert choose_jobs([big, small]) == 1  # under POOL_MIN_BYTES of JSON in all
    other = tmp_path / "c.json.gz"
    other.write_bytes(big.read_bytes())
    assert choose_jobs([big, other]) == min(2, os.cpu_count() or 1)
