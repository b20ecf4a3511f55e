"""Scalar curves from TensorBoard event files, read with tensorboard's own event reader."""

from __future__ import annotations

import math
from pathlib import Path

from reporter.errors import UsageError
from reporter.report.health import ScalarCurve, TrainingLogs

MAX_POINTS = 1000  # per curve in the report; rules see every non-finite step regardless


def find_event_files(logdir: Path) -> list[Path]:
    return sorted(p for p in logdir.rglob("*") if p.is_file() and "tfevents" in p.name)


def read_logs(logdir: str | Path) -> TrainingLogs:
    """Every scalar tag of every run (folder holding event files) under `logdir`."""
    from tensorboard.backend.event_processing import event_accumulator

    root = Path(logdir).expanduser()
    if not root.is_dir():
        raise UsageError(f"--logdir {logdir}: no such folder (give the folder of TensorBoard runs)")
    files = find_event_files(root)
    if not files:
        raise UsageError(
            f"--logdir {logdir}: no TensorBoard event files (*tfevents*) found under it"
        )
    logs = TrainingLogs(logdir=str(root.resolve()), event_files=len(files))
    for run_dir in sorted({f.parent for f in files}):
        acc = event_accumulator.EventAccumulator(
            str(run_dir), size_guidance={event_accumulator.SCALARS: 0}
        )
        acc.Reload()
        run = str(run_dir.relative_to(root)) or "."
        for tag in sorted(acc.Tags().get(event_accumulator.SCALARS, [])):
            events = acc.Scalars(tag)
            logs.curves.append(curve(run, tag, [e.step for e in events], [e.value for e in events]))
    return logs


def curve(run: str, tag: str, steps: list[int], values: list[float]) -> ScalarCurve:
    """A curve thinned to MAX_POINTS evenly spaced points, keeping every non-finite one."""
    bad = [s for s, v in zip(steps, values, strict=True) if not math.isfinite(v)]
    keep = range(len(steps))
    if len(steps) > MAX_POINTS:
        stride = len(steps) / MAX_POINTS
        picked = {int(i * stride) for i in range(MAX_POINTS)} | {len(steps) - 1}
        picked |= {i for i, v in enumerate(values) if not math.isfinite(v)}
        keep = sorted(picked)
    return ScalarCurve(
        run=run,
        tag=tag,
        steps=[int(steps[i]) for i in keep],
        values=[float(values[i]) for i in keep],
        points=len(steps),
        nonfinite_steps=[int(s) for s in bad],
    )
