"""scripts/gpu-check without a GPU: the check list, the refusal, and the battery's
report.json field paths against the Report dataclasses."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_check  # noqa: E402

from reporter.report import Report  # noqa: E402


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "gpu-check"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def base_env(tmp_path: Path) -> dict[str, str]:
    """PATH with a fake nvidia-smi that finds no GPU, first; python3 this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    fake.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GPU_CHECK_PYTHON": sys.executable,
        "GPU_CHECK_VENV": str(tmp_path / "venv"),
        "OUT": str(tmp_path / "out"),
    }


def test_dry_run_lists_every_check_and_installs_nothing(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    done = run(["--dry-run"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{c.name}: {c.what}" for c in gpu_check.CHECKS]
    assert len(gpu_check.CHECKS) >= 12
    assert not (tmp_path / "venv").exists() and not (tmp_path / "out").exists()
    only = run(["--dry-run", "--only", "oom,lstm-flops"], env)
    assert [line.split(":")[0] for line in only.stdout.splitlines()] == ["oom", "lstm-flops"]


def test_without_a_gpu_it_refuses_with_one_line(tmp_path: Path) -> None:
    done = run([], base_env(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no CUDA device" in done.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this Python sees a CUDA device"
)
def test_battery_without_cuda_exits_2_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "sees no CUDA device" in done.stderr


def test_unknown_check_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--dry-run", "--only", "nope"]) == 2
    assert "unknown check(s) nope" in capsys.readouterr().err


# ------------------------------------------------------------------ report.json fields
PATH_CALL = re.compile(r"\b(?:get|number)\((?:report|run\.report), \"([a-z0-9_.]+)\"")


def field_paths() -> set[str]:
    source = (ROOT / "scripts" / "gpu_check.py").read_text()
    for path in re.findall(r"for path in \(([^)]*)\)", source):
        source += "".join(f" get(report, {p.strip()})" for p in path.split(","))
    return set(PATH_CALL.findall(source))


def resolve(path: str) -> None:
    """Walk Report's type hints along a dotted path; AssertionError on a wrong name."""
    kind: typing.Any = Report
    for part in path.split("."):
        kind = _unwrap(kind)
        origin = typing.get_origin(kind)
        if origin is dict:
            kind = typing.get_args(kind)[1]
            continue
        if origin is list:
            assert part.isdigit(), f"{path}: {part} indexes a list"
            kind = typing.get_args(kind)[0]
            continue
        assert dataclasses.is_dataclass(kind), f"{path}: {part} below a {kind}"
        hints = typing.get_type_hints(kind)
        assert part in hints, f"{path}: {kind.__name__} has no field {part}"
        kind = hints[part]


def _unwrap(kind: typing.Any) -> typing.Any:
    """X | None -> X."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return args[0]
    return kind


def test_every_field_the_battery_reads_exists_in_the_report() -> None:
    paths = field_paths()
    expected = {
        "profile.kernels",
        "trace.overall.utilisation",
        "timing.cuda_event_ms.median",
        "memory.inference_total_bytes",
        "flops.backward_total",
        "experiments.experiments",
        "distributed.backend",
        "environment.cuda.cuda_version",
        "trace.overall.gpu_busy_us",
    }
    assert expected <= paths, expected - paths
    for path in paths:
        resolve(path)


def test_resolve_catches_a_wrong_field() -> None:
    with pytest.raises(AssertionError, match="TimingSection has no field cuda_events_ms"):
        resolve("timing.cuda_events_ms.median")


def test_get_fails_loudly_on_missing_or_null_fields() -> None:
    data = {"timing": {"cuda_event_ms": None, "samples_ms": [1.0]}}
    with pytest.raises(gpu_check.Fail, match="report.json has no timing.latency_ms"):
        gpu_check.get(data, "timing.latency_ms.median")
    with pytest.raises(gpu_check.Fail, match="timing.cuda_event_ms = null"):
        gpu_check.get(data, "timing.cuda_event_ms")
    assert gpu_check.get(data, "timing.samples_ms.0") == 1.0
    with pytest.raises(gpu_check.Fail, match="not a finite number"):
        gpu_check.number({"x": float("nan")}, "x")


def test_agree_passes_within_and_fails_beyond_the_tolerance() -> None:
    assert "4.0% apart" in gpu_check.agree("latency", 1.04, 1.0, 0.05)
    with pytest.raises(gpu_check.Fail, match="6.0% apart\\), over 5%"):
        gpu_check.agree("latency", 1.06, 1.0, 0.05)
    with pytest.raises(gpu_check.Fail):
        gpu_check.agree("zero reference", 1.0, 0.0, 0.5)


def test_kernel_union_from_a_trace_file(tmp_path: Path) -> None:
    events = [
        {"name": "ProfilerStep#1", "ph": "X", "cat": "user_annotation", "ts": 100, "dur": 50},
        {"name": "early", "ph": "X", "cat": "kernel", "ts": 10, "dur": 40},  # before the step
        {"name": "a", "ph": "X", "cat": "kernel", "ts": 110, "dur": 20},
        {"name": "b", "ph": "X", "cat": "kernel", "ts": 120, "dur": 20},  # overlaps a
        {"name": "c", "ph": "X", "cat": "kernel", "ts": 170, "dur": 10},
        {"name": "op", "ph": "X", "cat": "cpu_op", "ts": 100, "dur": 80},
    ]
    path = tmp_path / "t.pt.trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    busy, window = gpu_check.kernel_union_us(path)
    assert busy == 30 + 10  # [110, 140) and [170, 180)
    assert window == 80  # from the step's start to the last kernel's end


def test_kernel_union_agrees_with_the_trace_analysis_on_a_real_trace(tmp_path: Path) -> None:
    """The battery's busy-time reference, on an A100 trace (HTA test data, MIT licence in
    tests/data/traces/LICENSE-HTA-traces): the same union as reporter/trace/ computes."""
    from reporter.trace import analyse_paths

    trace = ROOT / "tests" / "data" / "traces" / "a100_alexnet.json.gz"
    busy, window = gpu_check.kernel_union_us(trace)
    section = analyse_paths([trace])
    assert busy == pytest.approx(section.overall.gpu_busy_us, rel=1e-9)
    assert 0 < busy <= window


def test_the_nvidia_driver_version_is_read_from_its_proc_file(tmp_path: Path) -> None:
    from reporter.environment import nvidia_driver_version

    proc = tmp_path / "version"
    proc.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
        "GCC version:  gcc version 12.2.0\n"
    )
    assert nvidia_driver_version(str(proc)) == "550.54.15"
    assert nvidia_driver_version(str(tmp_path / "absent")) == ""
