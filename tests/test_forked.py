"""The meta device's training pass in a forked child: same result, and a failure falls back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers import subject_for
from test_meta import LLAMA

from reporter import forked
from reporter.options import RunOptions
from reporter.stages import StageContext, passes, run_stage

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="needs Linux and 2 cores")


def test_result_crosses_the_pipe_whatever_its_size() -> None:
    big = {"rows": ["x" * 100] * 5000}  # 500 kB: far over a pipe's buffer
    child = forked.start(lambda: big, "big")
    assert child is not None and forked.result(child) == big


def test_a_failing_child_gives_none() -> None:
    child = forked.start(lambda: 1 / 0, "failing")
    assert child is not None and forked.result(child) is None


@pytest.mark.parametrize("kind", ["raise", "crash", "exit", "kill"])
def test_a_child_dying_at_its_fault_point_gives_none(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("PERFREPORT_FAULT", f"forked.doomed:{kind}")
    child = forked.start(lambda: "never sent", "doomed")
    assert child is not None and forked.result(child) is None
    spared = forked.start(lambda: "sent", "other")  # another point is not hit
    assert spared is not None and forked.result(spared) == "sent"


def _training(tmp_path: Path, train: bool) -> tuple[dict, bool]:
    path = tmp_path / "llama.py"
    path.write_text(LLAMA)
    subject = subject_for(path, tmp_path, device="meta")
    opts = RunOptions(
        model_file=str(path),
        out_dir=str(tmp_path),
        device="meta",
        train=train,
        stages=["summary", "flops", "memory"],
    )
    ctx = StageContext(subject=subject, options=opts)
    run_stage("summary", ctx)
    was_forked = ctx.cache.get("training_pass_fork") is not None
    return dataclasses.asdict(passes.training_pass(ctx)), was_forked


@pytest.mark.parametrize("train", [False, True], ids=["forward only", "with backward"])
def test_forked_training_pass_equals_the_one_run_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train: bool
) -> None:
    beside, was_forked = _training(tmp_path, train)
    assert was_forked
    monkeypatch.setattr(forked, "can_fork", lambda: False)
    here, was_forked = _training(tmp_path, train)
    assert not was_forked
    assert beside == here
    assert here["saved_activation_bytes"] > 0
    assert (here["backward_flops_total"] > 0) == train


def test_a_failed_fork_runs_the_pass_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, _ = _training(tmp_path, False)
    monkeypatch.setenv("PERFREPORT_FAULT", "forked.training_pass")
    again, was_forked = _training(tmp_path, False)
    assert was_forked and again == here
