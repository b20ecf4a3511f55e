"""Failing models, crashes, hangs and interrupts: a report still comes out, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES
from helpers import worker_pids

from reporter.report import STAGE_NAMES, Report, StageStatus
from reporter.rules import run_rules

FAST = "summary,flops,memory"


def _read(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _all_outputs_written(out: Path) -> None:
    for ext in ("html", "json", "md"):
        assert (out / f"report.{ext}").stat().st_size > 0
    assert not list(out.glob(".report.*.tmp")), "a temporary file was left behind"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_fault_injected_into_each_stage(cli, tmp_path, monkeypatch, stage) -> None:
    """Every stage runs under a guard: its failure is recorded, the others go on."""
    monkeypatch.setenv("PERFREPORT_FAULT", f"stage.{stage}")
    out = tmp_path / "out"
    result = cli(SAMPLES / "mlp.py", "-o", out, "--only", f"summary,flops,{stage}")
    assert result.code == 3, result.err  # report written, a stage failed
    assert f"stage(s) failed: {stage}" in result.err
    _all_outputs_written(out)
    data = _read(out)
    assert data["stages"][stage]["status"] == "failed"
    assert "fault injected" in data["stages"][stage]["error"]
    for other in {"summary", "flops"} - {stage}:
        assert data["stages"][other]["status"] == "ok"
        assert data[other] is not None
    assert "fault injected" in (out / "report.html").read_text()
    assert "fault injected" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("crash", "SIGABRT"),
        ("exit", "exited with code 3"),
        ("kill", "SIGKILL: most often the kernel's out-of-memory killer"),
        ("hang", "timed out after 30 s"),
    ],
)
def test_model_process_dies_mid_stage(cli, tmp_path, monkeypatch, kind, words) -> None:
    """A crash, os._exit or hang in the flops stage keeps the summary measured before it."""
    monkeypatch.setenv("PERFREPORT_FAULT", f"stage.flops:{kind}")
    out = tmp_path / "out"
    timeout = "30" if kind == "hang" else "300"  # the whole model process, startup included
    result = cli(SAMPLES / "mlp.py", "-o", out, "--only", FAST, "--timeout", timeout)
    assert result.code == 3, result.err
    data = _read(out)
    assert data["stages"]["summary"]["status"] == "ok"
    assert data["summary"]["layers"]
    assert data["stages"]["flops"]["status"] == "failed"
    assert words in data["stages"]["flops"]["error"]
    assert data["stages"]["memory"]["status"] == "skipped"
    assert "flops stage" in " ".join(data["notes"])
    _all_outputs_written(out)


MISBEHAVING = """
import os, sys, torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        print("x" * 1_000_000)          # megabytes of output
        os.chdir("/")                    # and a changed working directory
        if self.calls > 1:
            sys.exit(5)                  # exits on the second forward (the memory stage)
        return self.fc(x)

def example_inputs():
    return torch.randn(2, 4)
"""


def test_misbehaving_model(cli, tmp_path, model_file) -> None:
    out = tmp_path / "out"
    cwd = os.getcwd()
    result = cli(model_file(MISBEHAVING), "-o", out, "--only", FAST)
    assert os.getcwd() == cwd
    assert result.code == 3, result.err
    assert "xxxx" not in result.err + result.out  # the model's prints go to a log, not the terminal
    data = _read(out)
    assert data["stages"]["summary"]["status"] == "ok"
    failed = [s for s in data["stages"].values() if s["status"] == "failed"]
    assert any("sys.exit(5)" in s["error"] for s in failed)
    _all_outputs_written(out)


def test_forward_raising_midway_names_module(cli, tmp_path, model_file) -> None:
    source = """
    import torch
    from torch import nn

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("bad routing table")

    def build_model():
        return nn.Sequential(nn.Linear(4, 4), Boom(), nn.Linear(4, 2))

    def example_inputs():
        return torch.randn(2, 4)
    """
    result = cli(model_file(source), "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 2
    assert "`1` (Boom)" in result.err and "bad routing table" in result.err


def test_sigterm_leaves_previous_report_and_no_process(tmp_path) -> None:
    """SIGTERM mid-stage: the old report stays whole and the model process is gone."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"previous": true}')
    env = dict(os.environ, PERFREPORT_FAULT="stage.flops:hang", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reporter", str(SAMPLES / "mlp.py"), "-o", str(out), "--only", FAST],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    child = None
    while time.monotonic() < deadline and child is None:
        child = next(iter(worker_pids(proc.pid)), None)
        time.sleep(0.2)
    assert child is not None, "the model process did not start"
    time.sleep(3)  # let it reach the hanging stage
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    assert code == 130
    assert json.loads((out / "report.json").read_text()) == {"previous": True}
    assert not list(out.glob(".report.*"))
    time.sleep(0.5)
    assert not Path(f"/proc/{child}").exists() or "zombie" in _state(child)


def _state(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}") / "status").read_text().lower()
    except OSError:
        return "zombie"


def test_cuda_oom_becomes_a_finding() -> None:
    """The worker records allocator figures at an OOM; the rule turns them into a finding."""
    from reporter.report import ModelInfo

    report = Report(model=ModelInfo(class_name="X", source="x.py", device="cuda:0"))
    report.stages["profile"] = StageStatus(
        "failed",
        error="OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        facts={
            "out_of_memory": True,
            "allocated_bytes": 70 * 2**30,
            "reserved_bytes": 75 * 2**30,
            "max_allocated_bytes": 78 * 2**30,
            "device_total_bytes": 80 * 2**30,
        },
    )
    findings = [f for f in run_rules(report) if f.rule == "cuda-out-of-memory"]
    assert len(findings) == 1
    assert findings[0].evidence["peak_allocated"] == "78.00 GiB"
    assert findings[0].severity == "critical"
    report.stages["profile"] = StageStatus("failed", error="RuntimeError: other")
    assert not [f for f in run_rules(report) if f.rule == "cuda-out-of-memory"]


def test_static_stages_repeat_exactly(cli, tmp_path) -> None:
    """Same seed, same JSON, apart from timestamps and stage durations."""
    reports = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert cli(SAMPLES / "gpt_decoder.py", "-o", out, "--only", FAST, "--seed", "3").code == 0
        data = _read(out)
        for key in ("created",):
            data.pop(key)
        data["environment"].pop("timestamp")
        data["options"].pop("out_dir")
        data["options"].pop("command_line")
        data["environment"].pop("command_line")
        for s in data["stages"].values():
            s.pop("seconds")
        reports.append(data)
    assert reports[0] == reports[1]


def test_parent_process_never_imports_torch() -> None:
    """Only the model process pays for torch: the CLI, rules and renderers stay torch-free."""
    code = (
        "import sys\n"
        "import reporter.cli, reporter.pipeline, reporter.rules, reporter.diff\n"
        "import reporter.render.html, reporter.render.markdown, reporter.render.pdf\n"
        "import reporter.graph.recolour, reporter.trace.load\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
