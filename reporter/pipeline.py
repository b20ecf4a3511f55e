"""Runs the model process, gathers its stage results into a Report, then applies the rules.

The model runs in a child process (reporter.worker) so that a crash, a hang, sys.exit or
megabytes of prints in user code cannot take the report down with it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from reporter import child
from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.report import (
    STAGE_NAMES,
    Environment,
    ModelInfo,
    Report,
    StageStatus,
    from_data,
    to_data,
)
from reporter.report.base import type_hints
from reporter.report.enums import Status
from reporter.report.profile import TimingSection

ProgressFn = Callable[[str, str, StageStatus | None], None]  # (event, stage, status)
LOG_TAIL_BYTES = 4000


@dataclass
class ChildRun:
    """What came back from the model process."""

    report: Report
    running: str | None = None  # the stage that was running when the process ended
    usage_error: str | None = None
    usage_detail: str = ""  # the model process's traceback, for --debug
    finished: bool = False
    log_tail: str = ""
    returncode: int | None = None
    notes: list[str] = field(default_factory=list)


def run_model(options: RunOptions, progress: ProgressFn | None = None) -> Report:
    """Run every selected stage in a child process; raise UsageError for bad input."""
    progress = progress or (lambda *_: None)
    run = _run_child(options, progress)
    report = report_of(run, progress=progress)
    if report.timing is not None:
        _finish_timing(options, report, progress)
    return report


def new_run(options: RunOptions) -> ChildRun:
    report = Report(model=ModelInfo(class_name="?", source=options.model_file))
    report.options = to_data(options)
    return ChildRun(report=report)


def report_of(
    run: ChildRun, who: str = "the model process", progress: ProgressFn | None = None
) -> Report:
    """The Report from what a run streamed; stages it never reached are marked."""
    if run.usage_error:
        error = UsageError(run.usage_error)
        error.detail = run.usage_detail
        raise error
    report = run.report
    report.created = report.environment.timestamp
    if not run.finished:
        stage = _mark_unfinished(run, who)
        if progress is not None:
            progress("end", stage, report.stages[stage])  # the terminal shows the ✗ line too
    for name in STAGE_NAMES:
        report.stages.setdefault(name, StageStatus(Status.SKIPPED, reason="not selected"))
    # The worker runs the timing stage first; the report lists stages in their usual order.
    report.stages = {n: report.stages[n] for n in STAGE_NAMES} | report.stages
    return report


def _finish_timing(options: RunOptions, report: Report, progress: ProgressFn) -> None:
    """Figures that need the other sections or fresh processes (timing ran first)."""
    from reporter.profiling.allocator import run_experiment
    from reporter.profiling.contention import FAULTS_PER_CALL, SYSTEM_SHARE, page_fault_reason
    from reporter.profiling.stats import profiler_overhead

    timing = report.timing
    timing.profiler_overhead = profiler_overhead(report.profile, timing.latency_ms.median)
    th = options.stage_option("timing", "thresholds") or {}
    reason = ""
    if timing.counters is not None:
        reason = page_fault_reason(
            timing.counters,
            th.get("timing.faults_per_call", FAULTS_PER_CALL),
            th.get("timing.fault_system_share", SYSTEM_SHARE),
        )
    if not reason or timing.device != "cpu":
        return
    progress("start", "timing: allocator experiment", None)
    timing.allocator_experiment = run_experiment(
        reason, lambda env: _time_in_fresh_process(options, env), os.environ
    )


def _time_in_fresh_process(options: RunOptions, env: dict[str, str]) -> TimingSection:
    """The timing stage alone in a new model process with ``env`` added to its environment."""
    timing_options = {**options.stage_options.get("timing", {}), "batch_sweep": False}
    probe = replace(
        options,
        stages=["timing"],
        stage_options={**options.stage_options, "timing": timing_options},
    )
    run = _run_child(probe, lambda *_: None, env)
    status = run.report.stages.get("timing")
    if run.report.timing is None:
        why = run.usage_error or (status and status.error) or child.describe_exit(run.returncode)
        raise RuntimeError(why)
    return run.report.timing


def _run_child(
    options: RunOptions, progress: ProgressFn, extra_env: dict[str, str] | None = None
) -> ChildRun:
    """One model process (reporter.worker) with ``options``, its events applied as they come."""
    run = new_run(options)
    with tempfile.TemporaryDirectory(prefix="perfreport-") as tmp:
        options_path = Path(tmp) / "options.json"
        events_path = Path(tmp) / "events.jsonl"
        options_path.write_text(json.dumps(to_data(options)))
        cmd = child.python_command("reporter.worker", str(options_path), str(events_path))
        ending = child.run_guarded(
            cmd,
            events_path,
            lambda event: _apply(event, run, progress),
            options.timeout,
            extra_env,
            LOG_TAIL_BYTES,
        )
    if ending.timed_out:
        run.notes.append(f"timed out after {options.timeout:g} s (--timeout)")
    run.returncode = ending.returncode
    run.log_tail = ending.output
    return run


def read_events(stream: IO[bytes], run: ChildRun, progress: ProgressFn) -> None:
    """Every whole event in ``stream`` applied to ``run`` (the in-process run's events)."""
    for event in child.EventReader(stream).read():
        _apply(event, run, progress)


def _apply(event: dict[str, Any], run: ChildRun, progress: ProgressFn) -> None:
    kind = event["event"]
    report = run.report
    if kind == "stage_start":
        run.running = event["stage"]
        progress("start", event["stage"], None)
    elif kind == "loaded":
        report.model = from_data(ModelInfo, event["model"])
        report.environment = from_data(Environment, event["environment"])
        report.notes.extend(event.get("notes") or [])
        progress("end", "load", StageStatus(Status.OK))
        run.running = None
    elif kind == "stage_end":
        name = event["stage"]
        status = from_data(StageStatus, event["status"])
        report.stages[name] = status
        if event.get("section") is not None:
            setattr(report, name, from_data(type_hints(Report)[name], event["section"]))
        run.running = None
        progress("end", name, status)
    elif kind == "stage_progress":
        progress("progress", f"{event['stage']}: {event['message']}", None)
    elif kind == "stage_partial":  # kept if the process dies before the stage ends
        name = event["stage"]
        setattr(report, name, from_data(type_hints(Report)[name], event["section"]))
    elif kind == "usage_error":
        run.usage_error = event["message"]
        run.usage_detail = event.get("detail") or ""
    elif kind == "done":
        run.finished = True


def _mark_unfinished(run: ChildRun, who: str = "the model process") -> str:
    """The child died or was killed: say so in the report, keep what was measured.

    Returns the stage that was running."""
    why = "; ".join(run.notes) or child.describe_exit(run.returncode)
    stage = run.running or "load"
    if stage == "load":
        tail = run.log_tail.strip().splitlines()[-1:] or [""]
        raise UsageError(f"{who} {why} while loading the model file {tail[0]}".strip())
    run.report.stages[stage] = StageStatus(
        Status.FAILED, error=f"{who} {why} during this stage", detail=run.log_tail
    )
    for name in STAGE_NAMES:
        run.report.stages.setdefault(
            name, StageStatus(Status.SKIPPED, reason=f"not run: {who} {why} earlier")
        )
    run.report.notes.append(f"{who[0].upper()}{who[1:]} {why} during the {stage} stage.")
    return stage
