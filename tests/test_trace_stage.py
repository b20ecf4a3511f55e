"""The trace stage reads the traces this run's profile stage wrote, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.report.profile import ProfileSection
from reporter.report.trace import TraceSection
from reporter.stages.context import SkipStage, StageContext
from reporter.stages.trace import run
from tests.conftest import TRACE_DATA

TRACE = TRACE_DATA / "cpu_mlp_training.json.gz"


def context(out: Path, *recorded: str) -> StageContext:
    # The trace stage reads files only: it never touches the subject.
    ctx = StageContext(subject=None, options=RunOptions(model_file="m.py", out_dir=str(out)))  # type: ignore[arg-type]
    if recorded:
        ctx.sections["profile"] = ProfileSection("inference", "cpu", list(recorded))
    return ctx


def test_skips_without_a_trace(tmp_path: Path) -> None:
    with pytest.raises(SkipStage, match="no trace was recorded"):
        run(context(tmp_path))
    (tmp_path / "trace").mkdir()
    with pytest.raises(SkipStage, match="no trace was recorded"):
        run(context(tmp_path))


def test_analyses_the_profile_stage_traces(tmp_path: Path) -> None:
    run_dir = tmp_path / "trace" / "model"  # TensorBoard layout: logdir/run/files
    run_dir.mkdir(parents=True)
    shutil.copy(TRACE, run_dir / "host_1.1.pt.trace.json.gz")
    section = run(context(tmp_path, "trace/model/host_1.1.pt.trace.json.gz"))
    assert isinstance(section, TraceSection)
    assert section.ranks[0].step_count == 3


def test_a_trace_this_run_did_not_record_is_never_read(tmp_path: Path) -> None:
    """An earlier run's trace left in the folder is not this run's: the stage skips
    (reading this one would fail the stage: it is truncated)."""
    (tmp_path / "trace").mkdir()
    (tmp_path / "trace" / "perfreport.1.pt.trace.json").write_text('{"traceEvents": [')
    with pytest.raises(SkipStage, match="no trace was recorded"):
        run(context(tmp_path))


def test_damaged_trace_fails_the_stage_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "trace").mkdir()
    (tmp_path / "trace" / "x.pt.trace.json").write_text('{"traceEvents": [')
    with pytest.raises(UsageError, match="x.pt.trace.json is truncated"):
        run(context(tmp_path, "trace/x.pt.trace.json"))
