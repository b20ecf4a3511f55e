"""Trace stage: analyse the Kineto traces the profile stage wrote under OUT/trace/."""

from __future__ import annotations

from reporter.errors import UsageError
from reporter.report.trace import TraceSection
from reporter.stages.context import SkipStage, StageContext
from reporter.trace import analyse_paths
from reporter.trace.load import find_trace_files

TRACE_DIR = "trace"
NO_TRACE = "no trace was recorded (profile stage did not run)"


def run(ctx: StageContext) -> TraceSection:
    folder = ctx.out_dir / TRACE_DIR
    if not folder.is_dir():
        raise SkipStage(NO_TRACE)
    try:
        files = find_trace_files(folder)
    except UsageError:
        raise SkipStage(NO_TRACE) from None
    # A damaged trace file is a failure of this stage (UsageError names the file).
    return analyse_paths(files)
