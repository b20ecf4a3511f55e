"""Module scopes in the profiler trace, and reading times back out of the trace events.

`with_modules` records module hierarchy only for TorchScript, and the Python tracer
(`with_stack`) names modules by class and instance counter ("Linear_0") at a large cost.
So each module's forward is wrapped in a profiler range named after its qualified path,
``nn.Module: encoder.layer.0 (Linear)``; the trace then carries the model's own names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.profiler import record_function

from reporter.module_hooks import forward_hooks
from reporter.sanitize import range_name
from reporter.trace.events import NEST_SLACK_US, STEP_PREFIX

SCOPE_PREFIX = "nn.Module: "
ROOT_NAME = "<model>"  # path shown in the trace for the model itself


def scope_name(path: str, cls: str) -> str:
    """The range's name; the path as `range_path` writes it (torch does not escape it)."""
    return f"{SCOPE_PREFIX}{range_path(path) or ROOT_NAME} ({range_name(cls)})"


def range_path(path: str) -> str:
    """A module path as it appears in the trace: quotes and control characters replaced."""
    return range_name(path)


def parse_scope(name: str) -> tuple[str, str] | None:
    """'nn.Module: fc1 (Linear)' -> ('fc1', 'Linear'); None for any other event name."""
    if not name.startswith(SCOPE_PREFIX) or not name.endswith(")") or " (" not in name:
        return None
    path, cls = name[len(SCOPE_PREFIX) : -1].rsplit(" (", 1)
    return ("" if path == ROOT_NAME else path), cls


@contextmanager
def module_scopes(model: torch.nn.Module) -> Iterator[None]:
    """Open a profiler range on each of the model's modules at forward entry, close it on
    exit.

    The hooks are global, kept to the model's modules by identity: a hook attached to a
    module turns off nn.TransformerEncoderLayer's fused fast path, so the profile would
    show a path that the timing stage, and production, do not take.
    """
    names = {id(m): scope_name(path, type(m).__name__) for path, m in model.named_modules()}
    open_ranges: dict[int, list[record_function]] = defaultdict(list)

    def pre(mod: Any, args: Any) -> None:
        name = names.get(id(mod))
        if name is not None:
            rf = record_function(name)
            rf.__enter__()
            open_ranges[id(mod)].append(rf)

    def post(mod: Any, args: Any, out: Any) -> None:
        stack = open_ranges.get(id(mod))
        if stack:
            stack.pop().__exit__(None, None, None)

    # always_call: close the range even when forward raises.
    with forward_hooks(pre, post, always_call=True):
        yield


def step_durations(events: list[dict[str, Any]]) -> list[float]:
    """Wall time (µs) of each ProfilerStep#N range on the host, in step order."""
    steps = [
        e
        for e in events
        if e.get("ph") == "X"
        and e.get("cat") in ("user_annotation", "cpu_op")
        and str(e.get("name", "")).startswith(STEP_PREFIX)
    ]
    steps.sort(key=lambda e: int(e["name"][len(STEP_PREFIX) :]))
    return [float(e["dur"]) for e in steps]


@dataclass
class ScopeTotals:
    path: str
    cls: str
    calls: int = 0
    total_us: float = 0.0
    self_us: float = 0.0
    allocated_bytes: int = 0


@dataclass
class _Open:
    end: float
    scope: ScopeTotals
    children_us: float = 0.0
    dur: float = 0.0


def module_totals(events: list[dict[str, Any]], device_type: int = 0) -> dict[str, ScopeTotals]:
    """Per module path: calls, total and self time, and bytes allocated in its own scope.

    Self time is the scope's time minus that of the module scopes directly inside it; the
    bytes are those of allocations whose instant falls in the scope and in no child
    module scope, on the device type given (0 CPU, 1 CUDA, as the trace numbers them).
    """
    by_thread: dict[tuple[Any, Any], list[tuple[float, int, dict[str, Any]]]] = defaultdict(list)
    for e in events:
        name = str(e.get("name", ""))
        if e.get("ph") == "X" and e.get("cat") == "user_annotation" and parse_scope(name):
            by_thread[(e.get("pid"), e.get("tid"))].append((float(e["ts"]), 0, e))
        elif e.get("ph") == "i" and name == "[memory]":
            args = e.get("args", {})
            if args.get("Device Type") == device_type and args.get("Bytes", 0) > 0:
                by_thread[(e.get("pid"), e.get("tid"))].append((float(e["ts"]), 1, e))
    totals: dict[str, ScopeTotals] = {}
    for items in by_thread.values():
        # By start; at an equal start ranges before allocations, and longer ranges first
        # so that a parent opens before its child.
        items.sort(key=lambda t: (t[0], t[1], -float(t[2].get("dur", 0))))
        stack: list[_Open] = []
        for ts, kind, e in items:
            while stack and stack[-1].end <= ts + (NEST_SLACK_US if kind == 0 else 0):
                _close(stack.pop())
            if kind == 1:
                if stack:
                    stack[-1].scope.allocated_bytes += int(e["args"]["Bytes"])
                continue
            path, cls = parse_scope(e["name"])  # type: ignore[misc]
            scope = totals.setdefault(path, ScopeTotals(path, cls))
            dur = float(e["dur"])
            scope.calls += 1
            scope.total_us += dur
            if stack:
                stack[-1].children_us += dur
            stack.append(_Open(end=ts + dur, scope=scope, dur=dur))
        while stack:
            _close(stack.pop())
    return totals


def _close(entry: _Open) -> None:
    entry.scope.self_us += max(entry.dur - entry.children_us, 0.0)


def kernel_totals(events: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """GPU kernels by name: (launches, summed duration µs)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "kernel":
            entry = out[str(e.get("name", ""))]
            entry[0] += 1
            entry[1] += float(e.get("dur", 0.0))
    return {k: (int(v[0]), v[1]) for k, v in out.items()}


def memory_peak(events: list[dict[str, Any]], device_type: int = 0) -> int | None:
    """Highest 'Total Allocated' of the profiler's memory events for one device type.

    The profiler counts from zero when recording starts, so this is the peak of memory
    allocated during the recorded steps, above what was already allocated before them.
    """
    values = [
        int(e["args"]["Total Allocated"])
        for e in events
        if e.get("name") == "[memory]"
        and e.get("args", {}).get("Device Type") == device_type
        and "Total Allocated" in e.get("args", {})
    ]
    return max(max(values), 0) if values else None
