"""The model process and everything it starts end with the run, with perfreport, or at
their own deadline; and the terminal shows a stage the model process died in."""

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

from reporter.lifetime import DEADLINE_ENV, LIFELINE_ENV
from reporter.options import RunOptions
from reporter.report import to_data

SPAWNING = """
import multiprocessing, subprocess, time
import torch
from torch import nn

def _sleep():
    time.sleep(1000)

def build_model():
    popen = subprocess.Popen(["sleep", "1000"])
    daemon = multiprocessing.get_context("fork").Process(target=_sleep, daemon=True)
    daemon.start()
    with open({pids!r}, "w") as f:
        f.write(f"{{popen.pid}} {{daemon.pid}}")
    return nn.Linear(4, 2)

def example_inputs():
    return torch.randn(2, 4)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended: only its exit code is left


def _all_end(pids: list[int], within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _wait_for(path: Path, within_s: float = 120.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [int(p) for p in path.read_text().split()]


def test_processes_the_model_started_end_with_a_normal_run(cli, tmp_path, model_file) -> None:
    pids_file = tmp_path / "pids"
    source = SPAWNING.format(pids=str(pids_file))
    result = cli(model_file(source), "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 0, result.err
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    assert _all_end(pids), "a process the model started outlived the run"


@pytest.mark.parametrize("target", ["process", "group"])
def test_kill_9_of_perfreport_ends_the_model_process(tmp_path, model_file, target) -> None:
    """kill -9 of perfreport, or of its process group as CI does: the model's own session,
    and what the model started, go too."""
    pids_file = tmp_path / "pids"
    out = tmp_path / "out"
    env = dict(os.environ, PERFREPORT_FAULT="stage.summary:hang", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "reporter", str(model_file(SPAWNING.format(pids=str(pids_file))))]
    proc = subprocess.Popen(
        [*cmd, "-o", str(out), "--only", "summary", "--timeout", "600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = _wait_for(pids_file)
    workers = worker_pids(proc.pid)
    assert len(workers) == 1
    if target == "group":
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait(timeout=30)
    assert _all_end([*workers, *started]), "the model process outlived perfreport"
    assert not out.exists() or not list(out.iterdir())


def test_the_model_process_keeps_its_own_deadline(tmp_path: Path) -> None:
    """Even with perfreport alive but stuck, the guardian ends the group at the deadline."""
    options = RunOptions(
        model_file=str(SAMPLES / "mlp.py"), out_dir=str(tmp_path), stages=["summary"]
    )
    (tmp_path / "options.json").write_text(json.dumps(to_data(options)))
    (tmp_path / "events.jsonl").touch()
    read_fd, write_fd = os.pipe()
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        PERFREPORT_FAULT="stage.summary:hang",
        **{LIFELINE_ENV: str(read_fd), DEADLINE_ENV: "5"},
    )
    cmd = [sys.executable, "-m", "reporter.worker", "options.json", "events.jsonl"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, pass_fds=(read_fd,), start_new_session=True)
    os.close(read_fd)
    try:
        assert proc.wait(timeout=120) == -signal.SIGKILL
    finally:
        os.close(write_fd)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("kind", ["crash", "exit", "kill"])
def test_terminal_shows_the_stage_the_model_process_died_in(cli, tmp_path, monkeypatch, kind):
    monkeypatch.setenv("PERFREPORT_FAULT", f"stage.flops:{kind}")
    result = cli(SAMPLES / "mlp.py", "-o", tmp_path / "out", "--only", "summary,flops")
    assert result.code == 3, result.err  # report written, a stage died
    assert "✗ flops failed: the model process" in result.err
