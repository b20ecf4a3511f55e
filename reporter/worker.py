"""The model process: loads the model file, runs the stages, streams each result back.

The parent (pipeline.py) starts this as `python -P -m reporter.worker OPTIONS.json EVENTS.jsonl`.
Each line of EVENTS is one JSON event appended as soon as it happens (reporter.child's
event channel), so a crash, a hang or the OOM killer loses only the stage that was running.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from reporter import child
from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.report import OPT_IN_STAGES, STAGE_NAMES, StageStatus, from_data, to_data
from reporter.report.enums import Status
from reporter.report.stages import run_order


class Events(child.EventWriter):
    """The event channel, with the Report's dataclasses turned into JSON data."""

    def emit(self, event: str, **data: Any) -> None:
        super().emit(event, **to_data(data))


def main(argv: list[str]) -> int:
    options = from_data(RunOptions, json.loads(Path(argv[0]).read_text()))
    with open(argv[1], "ab", buffering=0) as sink:
        return run(options, Events(sink))


def run(options: RunOptions, events: Events) -> int:
    # Imported here so that a broken torch install is reported as an event too.
    from reporter.loader import load_subject

    if options.threads is not None:
        import torch

        # Before the model file runs, so everything it does sees the count (as in
        # torch.utils.benchmark.Timer(num_threads=N)).
        torch.set_num_threads(options.threads)
    events.emit("stage_start", stage="load")
    try:
        subject = load_subject(options)
    except UsageError as exc:
        events.emit("usage_error", message=str(exc), detail=traceback.format_exc())
        return 2
    return run_subject(subject, options, events)


def run_subject(subject: Any, options: RunOptions, events: Events) -> int:
    """Every selected stage on a loaded subject, each under its guard (also used in-process
    by the Python API for a live nn.Module)."""
    from reporter.environment import record_environment
    from reporter.forward_guard import ForwardError
    from reporter.model_info import describe_model
    from reporter.stages import SkipStage, StageContext, run_stage

    events.emit(
        "loaded",
        model=describe_model(subject),
        environment=record_environment(options, subject.device),
        notes=subject.notes,
    )
    running = {"stage": "load"}
    ctx = StageContext(
        subject=subject,
        options=options,
        progress=lambda message: events.emit(
            "stage_progress", stage=running["stage"], message=message
        ),
    )
    for name in run_order(STAGE_NAMES):
        if name not in options.stages:
            flag = OPT_IN_STAGES.get(name)
            reason = f"opt-in: pass {flag}" if flag else "not selected (--only/--skip)"
            status = StageStatus(Status.SKIPPED, reason=reason)
            events.emit("stage_end", stage=name, status=status, section=None)
            continue
        events.emit("stage_start", stage=name)
        running["stage"] = name
        ctx.on_partial = lambda section, name=name: events.emit(
            "stage_partial", stage=name, section=section
        )
        start = time.perf_counter()
        section = None
        try:
            child.inject_fault(f"stage.{name}")  # tests: PERFREPORT_FAULT=stage.NAME
            section = run_stage(name, ctx)
            status = StageStatus(Status.OK)
        except SkipStage as exc:
            status = StageStatus(Status.SKIPPED, reason=str(exc))
        except ForwardError as exc:
            events.emit("usage_error", message=str(exc), detail=traceback.format_exc())
            return 2
        except (Exception, SystemExit) as exc:
            status = StageStatus(Status.FAILED, error=_one_line(exc), detail=traceback.format_exc())
            status.facts = _failure_facts(exc, subject.device)
        status.seconds = round(time.perf_counter() - start, 3)
        if section is not None:
            ctx.sections[name] = section
        events.emit("stage_end", stage=name, status=status, section=section)
    events.emit("done")
    return 0


def _failure_facts(exc: BaseException, device: Any) -> dict[str, Any]:
    """Memory figures at a CUDA out-of-memory error, for the cuda-out-of-memory finding."""
    import torch

    if not isinstance(exc, torch.OutOfMemoryError) or device.type != "cuda":
        return {}
    torch.cuda.synchronize(device)
    return {
        "out_of_memory": True,
        "allocated_bytes": torch.cuda.memory_allocated(device),
        "reserved_bytes": torch.cuda.memory_reserved(device),
        "max_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "device_total_bytes": torch.cuda.get_device_properties(device).total_memory,
    }


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the model called sys.exit({exc.code})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


if __name__ == "__main__":
    from reporter.lifetime import guard_from_env

    guard_from_env()  # before anything of the model's runs: it must not outlive perfreport
    code = main(sys.argv[1:])
    # Every result is written and flushed by now, and tearing down torch, the model file's
    # modules and the model takes seconds (1.5 s after GPT-2 small): leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
