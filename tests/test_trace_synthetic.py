"""Small hand-made traces whose figures are known exactly: idle classification, launch
linking by flows, syncs and their callers, data loading, memory peaks, odd inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reporter.report.trace import TraceSection
from reporter.trace import analyse_paths

PID, TID, DEV = 100, 100, 0
BASE = 1_712_195_495_500_000.0  # epoch-like µs, where a double resolves only 0.25 µs


def op(name: str, ts: float, dur: float, cat: str = "cpu_op", **args: object) -> dict:
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": PID,
        "tid": TID,
        "ts": BASE + ts,
        "dur": dur,
        "args": dict(args),
    }


def launch(ts: float, corr: int, dur: float = 4.0, name: str = "cudaLaunchKernel") -> dict:
    return op(name, ts, dur, cat="cuda_runtime", correlation=corr)


def kernel(
    name: str,
    ts: float,
    dur: float,
    corr: int | None,
    cat: str = "kernel",
    stream: int = 7,
    **args: object,
) -> dict:
    a = {"device": DEV, "stream": stream, **args}
    if corr is not None:
        a["correlation"] = corr
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": DEV,
        "tid": stream,
        "ts": BASE + ts,
        "dur": dur,
        "args": a,
    }


def write(tmp_path: Path, events: list[dict], name: str = "t.json", **meta: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"traceEvents": events, **meta}))
    return path


def analyse(tmp_path: Path, events: list[dict], **meta: object) -> TraceSection:
    return analyse_paths([write(tmp_path, events, **meta)])


def test_idle_gaps_are_classified_by_when_the_next_op_was_launched(tmp_path: Path) -> None:
    events = [
        op("aten::a", -10, 6),
        launch(-9, 1),
        kernel("k_a", 0, 10, 1),
        op("aten::b", 19, 6),
        launch(20, 2),
        kernel("k_b", 30, 10, 2),  # launched after k_a ended
        op("aten::c", 24, 3),
        launch(25, 3),
        kernel("k_c", 42, 8, 3),  # queued; 2 µs gap
        op("aten::d", 26, 3),
        launch(26, 4),
        kernel("k_d", 80, 10, 4),  # queued; 30 µs gap
    ]
    g = analyse(tmp_path, events).ranks[0].gpu
    assert (g.idle.host_wait_us, g.idle.short_gap_us, g.idle.other_us) == (20.0, 2.0, 30.0)
    assert g.idle.gaps == 3
    assert g.busy_us == 38.0 and g.breakdown.idle_us == 52.0
    assert g.utilisation == pytest.approx(38.0 / 90.0)
    assert g.kernel_sum_us == 38.0
    assert g.launch.launch_delay_median_us == pytest.approx((10 + 17) / 2)  # of 9, 10, 17, 54
    assert g.launch.slow_calls == 0 and g.launch.shorter_than_launch == 0


def test_nanosecond_durations_survive_epoch_timestamps(tmp_path: Path) -> None:
    events = [
        launch(0, 1),
        kernel("k", 10.5, 4.928, 1),
        launch(1, 2),
        kernel("k", 15.428, 2.752, 2),
    ]
    g = analyse(tmp_path, events).ranks[0].gpu
    assert g.kernel_sum_us == pytest.approx(4.928 + 2.752, abs=1e-9)
    assert g.busy_us == pytest.approx(4.928 + 2.752, abs=0.3)


def test_launch_linked_by_flow_when_correlation_is_missing(tmp_path: Path) -> None:
    events = [
        op("aten::mm", 0, 20),
        op("cudaLaunchKernel", 2, 5, cat="cuda_runtime"),  # no correlation id anywhere
        kernel("gemm_kernel", 10, 30, None),
        {"ph": "s", "id": 7, "pid": PID, "tid": TID, "ts": BASE + 2, "cat": "ac2g", "name": "ac2g"},
        {
            "ph": "f",
            "id": 7,
            "pid": DEV,
            "tid": 7,
            "ts": BASE + 10,
            "cat": "ac2g",
            "name": "ac2g",
            "bp": "e",
        },
    ]
    s = analyse(tmp_path, events)
    assert s.top_kernels[0].launched_by == "aten::mm"
    assert any("linked to their launch by ac2g flow" in n for n in s.notes)
    events[3]["id"] = 8  # a flow that leads nowhere: the op stays unlinked, and says so
    s = analyse(tmp_path, events)
    assert s.top_kernels[0].launched_by == ""
    assert any("could not be linked" in n for n in s.notes)


def test_launching_op_is_the_innermost_cpu_op(tmp_path: Path) -> None:
    events = [
        op("## forward ##", 0, 100, cat="user_annotation"),
        op("aten::linear", 1, 50),
        op("aten::addmm", 1, 40),  # same start as its parent: nesting must still hold
        launch(5, 1),
        kernel("ampere_sgemm_128x64_nn", 20, 30, 1),
        op("aten::relu", 60, 10),
        launch(61, 2),
        kernel("void at::native::vectorized_elementwise_kernel<4>(int)", 55, 3, 2),
    ]
    rows = {k.short_name: k for k in analyse(tmp_path, events).top_kernels}
    assert rows["ampere_sgemm_128x64_nn"].launched_by == "aten::addmm"
    assert rows["ampere_sgemm_128x64_nn"].matmul_or_conv
    assert not rows["ampere_sgemm_128x64_nn"].tensor_core
    assert rows["at::native::vectorized_elementwise_kernel<4>"].launched_by == "aten::relu"


def test_syncs_are_found_with_their_caller(tmp_path: Path) -> None:
    step = op("ProfilerStep#3", 0, 1000, cat="user_annotation")
    events = [
        step,
        op("train.py(42): train_step", 1, 900, cat="python_function"),
        op("torch/_tensor.py(10): item", 400, 200, cat="python_function"),
        op("aten::item", 401, 150),
        op("aten::_local_scalar_dense", 402, 140),
        launch(403, 1, dur=20, name="cudaMemcpyAsync"),
        kernel("Memcpy DtoH (Device -> Pageable)", 410, 5, 1, cat="gpu_memcpy", bytes=4),
        op("cudaStreamSynchronize", 430, 100, cat="cuda_runtime", correlation=2),
        launch(10, 3),
        kernel("k", 20, 370, 3),
    ]
    s = analyse(tmp_path, events)
    syncs = s.ranks[0].syncs
    # The blocking copy and the stream sync both sit inside one item(): one sync, at the op,
    # named by the first wait inside it; its host time is that of the two calls (20 + 100).
    assert [(x.kind, x.op, x.context, x.count, x.in_steps) for x in syncs.sites] == [
        ("DtoH copy to pageable memory", "aten::item", "train.py(42): train_step", 1, 1)
    ]
    assert syncs.blocking_calls == 1 and syncs.blocking_us == 120.0
    assert syncs.in_steps == 1 and syncs.per_step == 1.0
    assert s.ranks[0].steps[0].syncs == 1
    assert s.ranks[0].gpu.memcpy.pageable_count == 1


def test_item_on_a_cpu_tensor_is_no_sync(tmp_path: Path) -> None:
    events = [
        op("ProfilerStep#1", 0, 200, cat="user_annotation"),
        op("aten::item", 50, 30),
        op("aten::_local_scalar_dense", 51, 28),  # no runtime call inside: a CPU tensor
        launch(1, 1),
        kernel("k", 5, 100, 1),
    ]
    syncs = analyse(tmp_path, events).ranks[0].syncs
    assert syncs.sites == [] and syncs.blocking_calls == 0
    assert syncs.value_reads_without_sync == 1


def test_zero_duration_nested_syncs_count_once(tmp_path: Path) -> None:
    # Microsecond traces round short calls to 0 µs: the item(), its _local_scalar_dense, the
    # stream sync and the driver call under it all start at 60 and last 0 µs. One sync. A
    # cudaDeviceSynchronize with its driver call at 0 µs (t=80) is a second one; the third
    # starts where a 5 µs one ends (t=90..95, then 95): separate syncs.
    events = [
        op("ProfilerStep#1", 0, 200, cat="user_annotation"),
        launch(1, 1),
        kernel("k", 5, 50, 1),
        op("aten::item", 60, 0),
        op("aten::_local_scalar_dense", 60, 0),
        op("cudaStreamSynchronize", 60, 0, cat="cuda_runtime"),
        op("cuStreamSynchronize", 60, 0, cat="cuda_driver"),
        op("cudaDeviceSynchronize", 80, 0, cat="cuda_runtime"),
        op("cuCtxSynchronize", 80, 0, cat="cuda_driver"),
        op("cudaStreamSynchronize", 90, 5, cat="cuda_runtime"),
        op("cudaStreamSynchronize", 95, 0, cat="cuda_runtime"),
    ]
    syncs = analyse(tmp_path, events).ranks[0].syncs
    assert syncs.blocking_calls == 4 and syncs.in_steps == 4
    kinds = sorted((x.kind, x.op, x.count) for x in syncs.sites)
    assert kinds == [
        ("cudaDeviceSynchronize", "", 1),
        ("cudaStreamSynchronize", "", 2),
        ("cudaStreamSynchronize", "aten::item", 1),
    ]


def test_dataloader_share_and_memory_peak(tmp_path: Path) -> None:
    events = [
        op("ProfilerStep#0", 0, 1000, cat="user_annotation"),
        op(
            "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__",
            10,
            300,
            cat="user_annotation",
        ),
        op("aten::mm", 400, 100),
        launch(401, 1),
        kernel("k", 410, 500, 1),
        {
            "ph": "i",
            "cat": "cpu_instant_event",
            "s": "t",
            "name": "[memory]",
            "pid": PID,
            "tid": TID,
            "ts": BASE + 500,
            "args": {
                "Total Allocated": 38_000,
                "Total Reserved": 39_000,
                "Bytes": 1,
                "Device Type": 1,
                "Device Id": 0,
            },
        },
        {
            "ph": "i",
            "cat": "cpu_instant_event",
            "s": "t",
            "name": "[memory]",
            "pid": PID,
            "tid": TID,
            "ts": BASE + 600,
            "args": {
                "Total Allocated": 10_000,
                "Total Reserved": 39_000,
                "Bytes": -1,
                "Device Type": 1,
                "Device Id": 0,
            },
        },
    ]
    props = [
        {
            "id": 0,
            "name": "Test GPU",
            "totalGlobalMem": 40_000,
            "computeMajor": 8,
            "computeMinor": 6,
        }
    ]
    rank = analyse(tmp_path, events, deviceProperties=props).ranks[0]
    assert rank.dataloader_us == 300.0
    assert rank.dataloader_share == pytest.approx(300.0 / 1000.0)
    assert rank.steps[0].dataloader_us == 300.0
    (peak,) = rank.memory
    assert (peak.device, peak.peak_allocated_bytes, peak.capacity_bytes) == (
        "cuda:0",
        38_000,
        40_000,
    )
    assert peak.share == pytest.approx(0.95)
    assert rank.compute_capability == "8.6" and rank.device_name == "Test GPU"


def test_communication_overlap_and_streams(tmp_path: Path) -> None:
    events = [
        launch(0, 1),
        kernel("gemm", 10, 100, 1),
        launch(1, 2),
        kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*)", 60, 100, 2, stream=20),
    ]
    g = analyse(tmp_path, events).ranks[0].gpu
    c = g.communication
    assert (c.kernels, c.total_us, c.overlapped_us, c.exposed_us) == (1, 100.0, 50.0, 50.0)
    assert g.breakdown.compute_us == 100.0 and g.breakdown.communication_us == 50.0
    assert g.streams.concurrent_us == 50.0
    assert {s.stream for s in g.streams.streams} == {7, 20}


def test_ops_on_two_devices_are_noted(tmp_path: Path) -> None:
    events = [
        launch(0, 1),
        kernel("a", 5, 10, 1),
        launch(1, 2),
        kernel("b", 6, 10, 2),
        launch(2, 3),
        kernel("c", 7, 10, 3),
    ]
    events[-1]["args"]["device"] = 1
    s = analyse(tmp_path, events)
    assert s.ranks[0].gpu.device == 0 and s.ranks[0].gpu.kernel_count == 2
    assert any("devices 0, 1" in n for n in s.notes)


def test_odd_events_are_skipped_not_fatal(tmp_path: Path) -> None:
    events = [
        "not an object",
        42,
        None,
        {"ph": "X", "cat": "cpu_op", "name": "no_ts", "dur": 3},
        {"ph": "X", "cat": "cpu_op", "name": "bad_ts", "ts": "soon", "dur": 3},
        {"ph": "X", "cat": "mystery", "name": "x", "ts": BASE, "dur": 1},
        op("aten::add", 0, 5),
    ]
    s = analyse(tmp_path, events)
    assert [o.name for o in s.ranks[0].cpu_ops] == ["aten::add"]
    assert any("1 mystery" in n for n in s.notes)
