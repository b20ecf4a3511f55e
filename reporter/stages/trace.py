"""Trace stage: analyse the Kineto traces the profile stage wrote under OUT/trace/."""

from __future__ import annotations

from reporter.report.trace import TraceSection
from reporter.stages.context import SkipStage, StageContext
from reporter.trace import analyse_paths

TRACE_DIR = "trace"
NO_TRACE = "no trace was recorded (profile stage did not run)"


def run(ctx: StageContext) -> TraceSection:
    # Only the trace this run's profile stage recorded: whatever else lies in the folder
    # (an earlier run's, another run's) is not this model's.
    profile = ctx.sections.get("profile")
    if profile is None or not profile.trace_files:
        raise SkipStage(NO_TRACE)
    files = [ctx.out_dir / name for name in profile.trace_files]
    # A damaged trace file is a failure of this stage (UsageError names the file).
    return analyse_paths(files)
