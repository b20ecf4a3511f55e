"""Runs the model process, gathers its stage results into a Report, then applies the rules.

The model runs in a child process (reporter.worker) so that a crash, a hang, sys.exit or
megabytes of prints in user code cannot take the report down with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporter import child, lifetime
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

ProgressFn = Callable[[str, str, StageStatus | None], None]  # (event, stage, status)
LOG_TAIL_BYTES = 4000


@dataclass
class ChildRun:
    """What came back from the model process."""

    report: Report
    running: str | None = None  # the stage that was running when the process ended
    usage_error: str | None = None
    finished: bool = False
    log_tail: str = ""
    returncode: int | None = None
    notes: list[str] = field(default_factory=list)


def run_model(options: RunOptions, progress: ProgressFn | None = None) -> Report:
    """Run every selected stage in a child process; raise UsageError for bad input."""
    progress = progress or (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="perfreport-") as tmp:
        run = _run_child(options, Path(tmp), progress)
    if run.usage_error:
        raise UsageError(run.usage_error)
    report = run.report
    report.created = report.environment.timestamp
    if not run.finished:
        stage = _mark_unfinished(run)
        progress("end", stage, report.stages[stage])  # the terminal shows the ✗ line too
    for name in STAGE_NAMES:
        report.stages.setdefault(name, StageStatus("skipped", reason="not selected"))
    return report


def _run_child(options: RunOptions, tmp: Path, progress: ProgressFn) -> ChildRun:
    options_path = tmp / "options.json"
    events_path = tmp / "events.jsonl"
    options_path.write_text(json.dumps(to_data(options)))
    events_path.touch()
    report = Report(model=ModelInfo(class_name="?", source=options.model_file))
    report.options = to_data(options)
    run = ChildRun(report=report)
    # -P: the working folder is not put on sys.path (a torchinfo.py there would shadow it)
    cmd = [sys.executable, "-P", "-m", "reporter.worker", str(options_path), str(events_path)]
    read_fd, lifeline = lifetime.lifeline()
    output = child.OutputTail(LOG_TAIL_BYTES)
    with open(events_path, encoding="utf-8") as events:
        try:
            proc = child.start(
                cmd, output.write_fd, (read_fd,), lifetime.lifeline_env(read_fd, options.timeout)
            )
        finally:
            os.close(read_fd)
            output.close_writer()
        deadline = time.monotonic() + options.timeout
        try:
            while True:
                _read_events(events, run, progress)
                if proc.poll() is not None:
                    _read_events(events, run, progress)
                    break
                if time.monotonic() > deadline:
                    _kill(proc)
                    run.notes.append(f"timed out after {options.timeout:g} s (--timeout)")
                    break
                time.sleep(0.05)
        finally:
            # Ctrl-C, SIGTERM or a normal end: nothing the model started is left running.
            _kill(proc)
            os.close(lifeline)
    run.returncode = proc.returncode
    run.log_tail = output.text()
    return run


def _read_events(stream: Any, run: ChildRun, progress: ProgressFn) -> None:
    while True:
        pos = stream.tell()
        line = stream.readline()
        if not line.endswith("\n"):
            stream.seek(pos)  # a partial line: the child is still writing it
            return
        _apply(json.loads(line), run, progress)


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
        progress("end", "load", StageStatus("ok"))
        run.running = None
    elif kind == "stage_end":
        name = event["stage"]
        status = from_data(StageStatus, event["status"])
        report.stages[name] = status
        if event.get("section") is not None:
            setattr(report, name, from_data(type_hints(Report)[name], event["section"]))
        run.running = None
        progress("end", name, status)
    elif kind == "stage_partial":  # kept if the process dies before the stage ends
        name = event["stage"]
        setattr(report, name, from_data(type_hints(Report)[name], event["section"]))
    elif kind == "usage_error":
        run.usage_error = event["message"]
    elif kind == "done":
        run.finished = True


def _mark_unfinished(run: ChildRun) -> str:
    """The child died or was killed: say so in the report, keep what was measured.

    Returns the stage that was running."""
    why = "; ".join(run.notes) or _death_reason(run.returncode)
    stage = run.running or "load"
    if stage == "load":
        tail = run.log_tail.strip().splitlines()[-1:] or [""]
        raise UsageError(f"the model process {why} while loading the model file {tail[0]}".strip())
    run.report.stages[stage] = StageStatus(
        "failed", error=f"the model process {why} during this stage", detail=run.log_tail
    )
    for name in STAGE_NAMES:
        run.report.stages.setdefault(
            name, StageStatus("skipped", reason=f"not run: the model process {why} earlier")
        )
    run.report.notes.append(f"The model process {why} during the {stage} stage.")
    return stage


def _death_reason(code: int | None) -> str:
    if code is None:
        return "did not finish"
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGKILL:
            return "was killed (SIGKILL: most often the kernel's out-of-memory killer)"
        if sig == signal.SIGSEGV:
            return "crashed (segmentation fault)"
        return f"was ended by {sig.name}"
    return f"exited with code {code} (the model code may have called os._exit or exit)"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # The guardian keeps the group (and so its id) alive until killed here: the id cannot
    # have been reused, even when the model process itself has already been reaped.
    lifetime.kill_group(proc.pid)
    proc.wait()
