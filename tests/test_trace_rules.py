"""GPU rules: each fires on a trace that shows the problem and stays quiet on one that does
not, with the numbers and names behind it in the evidence."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

import reporter.rules.gpu  # noqa: F401  (registers the GPU rules)
from reporter.report import Finding, ModelInfo, Report
from reporter.rules.registry import RULES, default_thresholds, run_rules
from reporter.trace import analyse_paths
from tests.conftest import TRACE_DATA

TRACES = TRACE_DATA
GPU_RULES = sorted(r for r in RULES if r.startswith("gpu-"))


@cache
def report(*names: str) -> Report:
    section = analyse_paths([TRACES / n for n in names])
    return Report(model=ModelInfo(class_name="trace", source="traces"), kind="trace", trace=section)


def findings(rep: Report, rule_id: str, **overrides: float) -> list[Finding]:
    return [f for f in run_rules(rep, overrides) if f.rule == rule_id]


ALEXNET = ("a100_alexnet.json.gz",)
NCCL = ("a100_nccl_training.json.gz",)
V100 = ("v100_training_rank0.json.gz",)
PAIR = ("two_rank_rank0.json.gz", "two_rank_rank1.json.gz")
CPU = ("cpu_mlp_training.json.gz",)
COUNTERS = ("a100_cupti_counters.json.gz",)


def test_gpu_rules_registered_with_prefixed_thresholds() -> None:
    assert len(GPU_RULES) == 10
    for rule_id in GPU_RULES:
        r = RULES[rule_id]
        assert r.reads == ("trace",) and r.doc
        assert all(name.startswith("gpu.") for name in r.thresholds)
    assert default_thresholds()["gpu.min_utilisation"] == 0.5


@pytest.mark.parametrize("names", [CPU, COUNTERS])
def test_no_gpu_rule_fires_without_gpu_activity(names: tuple[str, ...]) -> None:
    assert [f.rule for f in run_rules(report(*names)) if f.rule.startswith("gpu-")] == []


def test_every_gpu_finding_has_evidence_and_a_fix() -> None:
    for names in (ALEXNET, NCCL, V100, PAIR):
        for f in run_rules(report(*names)):
            assert f.rule in RULES and f.evidence and f.recommendation and f.snippet
            assert f.severity in ("info", "warning", "critical")
            json.dumps(f.evidence)  # evidence is plain JSON


def test_low_utilisation() -> None:
    (f,) = findings(report(*NCCL), "gpu-low-utilisation")
    util = report(*NCCL).trace.overall.utilisation
    assert f.evidence["utilisation"] == f"{100 * util:.1f}%" and f.severity == "critical"
    assert f.evidence["main_idle_cause"] == "host wait"
    assert findings(report(*V100), "gpu-low-utilisation") == []  # 97% busy
    assert findings(report(*NCCL), "gpu-low-utilisation", **{"gpu.min_utilisation": 0.2}) == []


def test_idle_host_wait() -> None:
    (f,) = findings(report(*NCCL), "gpu-idle-host-wait")
    assert f.evidence["top_cpu_ops_by_self_time"][0].startswith("aten::")
    assert findings(report(*V100), "gpu-idle-host-wait") == []


def test_launch_bound_needs_a_shallow_queue() -> None:
    (f,) = findings(report(*NCCL), "gpu-launch-bound")
    assert f.evidence["kernels"] == 2700 and f.evidence["median_launch_delay_us"] < 100
    # V100 also runs many tiny kernels, but 76 ms of queued work hides their launch cost.
    v100 = report(*V100).trace.ranks[0].gpu.launch
    assert v100.shorter_than_launch_share > 0.3
    assert findings(report(*V100), "gpu-launch-bound") == []


def test_host_sync_in_steps() -> None:
    (f,) = findings(report(*NCCL), "gpu-host-sync")
    assert f.evidence["syncs_per_step"] == 8.0
    assert "cudaEventSynchronize" in f.evidence["sites"][0]
    pair = findings(report(*PAIR), "gpu-host-sync")
    assert [f.evidence["rank"] for f in pair] == [0, 1]
    assert all("DtoH copy to pageable memory" in f.evidence["sites"][0] for f in pair)
    # V100's only sync (cudaDeviceSynchronize) comes after the last step.
    assert findings(report(*V100), "gpu-host-sync") == []


def test_pageable_memcpy() -> None:
    (f,) = findings(report(*ALEXNET), "gpu-pageable-memcpy")
    assert f.evidence["copies"] == 16 and f.evidence["directions"] == ["HtoD (Pageable -> Device)"]
    assert findings(report(*PAIR), "gpu-pageable-memcpy") == []  # 22 KiB: below 1 MiB
    assert findings(report(*V100), "gpu-pageable-memcpy") == []  # device-to-device only


def test_communication() -> None:
    pair = findings(report(*PAIR), "gpu-communication")
    assert [f.evidence["rank"] for f in pair] == [0, 1]
    assert all("ncclKernel_SendRecv" in f.evidence["collectives"][0] for f in pair)
    assert findings(report(*V100), "gpu-communication") == []  # no collectives
    quiet = {"gpu.max_comm_share": 0.9, "gpu.max_exposed_comm_share": 0.9}
    assert findings(report(*PAIR), "gpu-communication", **quiet) == []


def test_straggler() -> None:
    (f,) = findings(report(*PAIR), "gpu-straggler")
    assert f.evidence["rank"] == 1 and f.target == "rank 1"
    assert set(f.evidence["compute_per_step_ms"]) == {"rank 0", "rank 1"}
    assert findings(report(*PAIR), "gpu-straggler", **{"gpu.straggler_excess": 0.5}) == []
    assert findings(report(*NCCL), "gpu-straggler") == []  # one rank


def test_fp32_not_on_tensor_cores() -> None:
    (f,) = findings(report(*V100), "gpu-fp32-no-tensor-cores")
    assert f.evidence["compute_capability"] == "7.0"
    assert "float16" in f.snippet  # Volta: fp16 AMP, no TF32/bf16
    assert "aten::convolution_backward" in f.evidence["ops"]
    (a100,) = findings(report(*ALEXNET), "gpu-fp32-no-tensor-cores")
    assert "set_float32_matmul_precision" in a100.snippet  # Ampere: TF32
    assert findings(report(*NCCL), "gpu-fp32-no-tensor-cores") == []  # TF32 kernels already


def _synthetic(tmp_path: Path, dataloader_us: float, allocated: int) -> Report:
    base = 1_700_000_000_000_000.0
    events = [
        {
            "ph": "X",
            "cat": "user_annotation",
            "name": "ProfilerStep#0",
            "pid": 1,
            "tid": 1,
            "ts": base,
            "dur": 1000,
        },
        {
            "ph": "X",
            "cat": "user_annotation",
            "name": "## data_load ##",
            "pid": 1,
            "tid": 1,
            "ts": base + 1,
            "dur": dataloader_us,
        },
        {
            "ph": "X",
            "cat": "cuda_runtime",
            "name": "cudaLaunchKernel",
            "pid": 1,
            "tid": 1,
            "ts": base + 500,
            "dur": 5,
            "args": {"correlation": 1},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "k",
            "pid": 0,
            "tid": 7,
            "ts": base + 510,
            "dur": 400,
            "args": {"device": 0, "stream": 7, "correlation": 1},
        },
        {
            "ph": "i",
            "name": "[memory]",
            "pid": 1,
            "tid": 1,
            "ts": base + 600,
            "args": {
                "Total Allocated": allocated,
                "Total Reserved": allocated,
                "Device Type": 1,
                "Device Id": 0,
            },
        },
    ]
    path = tmp_path / f"s{dataloader_us}.json"
    path.write_text(
        json.dumps(
            {
                "traceEvents": events,
                "deviceProperties": [
                    {
                        "id": 0,
                        "name": "GPU",
                        "totalGlobalMem": 1000,
                        "computeMajor": 9,
                        "computeMinor": 0,
                    }
                ],
            }
        )
    )
    return Report(model=ModelInfo(class_name="t", source="t"), trace=analyse_paths([path]))


def test_dataloader(tmp_path: Path) -> None:
    (f,) = findings(_synthetic(tmp_path, 200, 10), "gpu-dataloader")
    assert f.evidence["share"] == "20.0%" and f.evidence["dataloader_ms"] == 0.2
    assert findings(_synthetic(tmp_path, 20, 10), "gpu-dataloader") == []
    assert findings(report(*PAIR), "gpu-dataloader") == []  # "## data_load ##" is ~1% there


def test_memory_near_capacity(tmp_path: Path) -> None:
    (f,) = findings(_synthetic(tmp_path, 20, 950), "gpu-memory-near-capacity")
    assert f.evidence["share"] == "95.0%" and f.target == "cuda:0" and f.severity == "warning"
    assert findings(_synthetic(tmp_path, 20, 500), "gpu-memory-near-capacity") == []
    assert findings(report(*CPU), "gpu-memory-near-capacity") == []  # CPU peak, no capacity
