"""Kernel launches: tiny kernels, launch delay, time in runtime calls and slow calls, and
HTA's launch-to-start delay."""

from __future__ import annotations

import re
import statistics
from bisect import bisect_left
from collections.abc import Sequence

from reporter.report.trace import LaunchFigures, NameTime
from reporter.trace.analyzers.names import QUEUE_LAUNCHES
from reporter.trace.analyzers.window import Window
from reporter.trace.events import GpuEvent, HostEvent, TraceEvents

TINY_KERNEL_US = 10.0  # kernels shorter than this are dominated by launch cost
SLOW_CALL_US = 50.0  # runtime calls longer than this stall the launching thread
_LAUNCH_CALL = re.compile(r"LaunchKernel|cuLaunch|LaunchCooperative|cudaGraphLaunch")


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def launch_figures(
    kernels: Sequence[GpuEvent],
    host: Sequence[HostEvent],
    runtime: Sequence[HostEvent],
    window: Window,
) -> LaunchFigures:
    durs = sorted([g.end - g.start for g in kernels])
    delays = []
    shorter = 0
    for g in kernels:
        i = g.launch
        if i >= 0:
            call = host[i]
            delays.append(g.start - call.start)
            if g.end - g.start < call.end - call.start:
                shorter += 1
    delays.sort()
    slow: dict[str, NameTime] = {}
    runtime_us = launch_us = slow_us = 0.0
    slow_n = 0
    slow_call_us = SLOW_CALL_US
    is_launch: dict[str, bool] = {}
    for h in runtime:
        d = h.end - h.start
        runtime_us += d
        name = h.name
        hit = is_launch.get(name)
        if hit is None:
            hit = is_launch[name] = bool(_LAUNCH_CALL.search(name))
        if hit:
            launch_us += d
        if d > slow_call_us:
            slow_n += 1
            slow_us += d
            row = slow.get(name)
            if row is None:
                row = slow[name] = NameTime(name)
            row.count += 1
            row.total_us += d
    n = len(kernels)
    tiny = bisect_left(durs, TINY_KERNEL_US)  # durs is sorted: the count below the threshold
    ms = window.length / 1000.0
    return LaunchFigures(
        kernels=n,
        median_kernel_us=statistics.median(durs) if durs else None,
        tiny_kernels=tiny,
        tiny_share=tiny / n if n else 0.0,
        tiny_kernel_threshold_us=TINY_KERNEL_US,
        shorter_than_launch=shorter,
        shorter_than_launch_share=shorter / n if n else 0.0,
        launch_delay_median_us=statistics.median(delays) if delays else None,
        launch_delay_p90_us=percentile(delays, 0.9),
        runtime_us=runtime_us,
        launch_call_us=launch_us,
        slow_calls=slow_n,
        slow_call_us=slow_us,
        slow_call_threshold_us=SLOW_CALL_US,
        slow_call_names=sorted(slow.values(), key=lambda r: -r.total_us)[:5],
        kernels_per_ms=n / ms if ms > 0 else 0.0,
    )


def launch_to_start(gpu: Sequence[GpuEvent], ev: TraceEvents) -> list[float]:
    """HTA's launch delay, sorted: for every op enqueued by a launch call (QUEUE_LAUNCHES:
    kernels, async copies and memsets), its start less the end of that call, 0 when it
    started before the call returned. Over the whole trace, like queue_lengths."""
    host = ev.host
    out = []
    for g in gpu:
        if g.launch >= 0:
            call = host[g.launch]
            if call.name in QUEUE_LAUNCHES:
                delay = g.start - call.end
                out.append(delay if delay > 0 else 0.0)
    out.sort()
    return out
