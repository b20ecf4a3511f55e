"""The analysed window of a trace (steps extended by their GPU tail), the steps' windows,
the device a rank drives, and tb-profiler's utilisation window."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from reporter.trace import intervals as iv
from reporter.trace.events import CPU_OP, GpuEvent, TraceEvents


@dataclass
class Window:
    start: float
    end: float

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)


def main_device(ops_per_device: Counter[int]) -> int | None:
    """The device that ran the most GPU ops (a rank normally drives one)."""
    if not ops_per_device:
        return None
    return ops_per_device.most_common(1)[0][0]


def sorted_ops(gpu: Sequence[GpuEvent]) -> list[GpuEvent]:
    """The ops sorted by (start, end), ties in trace order.

    Sorted once here; every figure after walks this order. Sorting by start alone is near
    linear (ops come nearly in order); the end decides only between equal starts.
    """
    out = sorted(gpu, key=attrgetter("start"))
    iv.sort_ties(out, [g.start for g in out], attrgetter("end"))
    return out


def trace_window(ev: TraceEvents, gpu: Sequence[GpuEvent]) -> Window:
    """See the module doc of reporter.report.trace: steps extended by their GPU tail."""
    if ev.steps:
        start = ev.steps[0].start
        last_end = max(s.end for s in ev.steps)
        end = last_end
        host = ev.host
        for g in gpu:
            launched = host[g.launch].start if g.launch >= 0 else g.start
            if launched < last_end and g.end > end:
                end = g.end
        return Window(start, end)
    if gpu:
        return Window(min(g.start for g in gpu), max(g.end for g in gpu))
    if ev.host:
        return Window(min(h.start for h in ev.host), max(h.end for h in ev.host))
    return Window(0.0, 0.0)


def step_windows(ev: TraceEvents, window: Window) -> list[Window]:
    """Each step runs until the next one starts; the last one to the window's end."""
    steps = ev.steps
    out = []
    for i, s in enumerate(steps):
        end = steps[i + 1].start if i + 1 < len(steps) else window.end
        out.append(Window(s.start, max(end, s.start)))
    return out


def tb_window(ev: TraceEvents) -> tuple[float, float]:
    """tb-profiler's window for GPU utilisation: its steps' span, CPU-only time included.

    With ProfilerSteps: the first step's start to the last step's end. Without: the span
    of the host ops (cpu_op). tb-profiler 0.4.3 also stretches a step to the end of the
    GPU work launched in it, but only on traces whose runtime calls are in category
    "Runtime" (PyTorch 1.8-1.9); that is left out here. Returns (start, end) on the
    trace's time base.
    """
    if ev.steps:
        return (ev.steps[0].start, max(s.end for s in ev.steps))
    host = ev.host
    ops = [host[i] for i in ev.of(CPU_OP)]
    if not ops:
        return (0.0, 0.0)
    return (min(h.start for h in ops), max(h.end for h in ops))
