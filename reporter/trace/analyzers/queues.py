"""Streams: busy time per stream, time two or more ran at once, and HTA's queue length
per stream."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from reporter.report.trace import StreamFigures, StreamRow
from reporter.trace import intervals as iv
from reporter.trace.analyzers.names import QUEUE_LAUNCHES
from reporter.trace.analyzers.window import Window
from reporter.trace.events import KERNEL, GpuEvent, TraceEvents


def stream_figures(gpu: Sequence[GpuEvent], window: Window, active_us: float) -> StreamFigures:
    """Busy time per stream and the time two or more streams ran at once."""
    lo, hi = window.start, window.end
    # One pass: per stream its op and kernel counts (all ops) and its ops' intervals
    # clipped to the window (as iv.clip), in start order since the ops are sorted.
    spans: dict[int, list[iv.Interval]] = {}
    counts: dict[int, list[int]] = {}  # stream -> [ops, kernels]
    kernel = KERNEL
    for g in gpu:
        stream = g.stream
        count = counts.get(stream)
        if count is None:
            count = counts[stream] = [0, 0]
            spans[stream] = []
        count[0] += 1
        if g.cat == kernel:
            count[1] += 1
        s, e = g.start, g.end
        if e > lo and s < hi:
            spans[stream].append((lo if lo > s else s, hi if hi < e else e))
    merged = {stream: iv.merge(items, presorted=True) for stream, items in spans.items()}
    rows = [
        StreamRow(stream=stream, busy_us=iv.length(merged[stream]), ops=ops, kernels=kernels)
        for stream, (ops, kernels) in counts.items()
    ]
    rows.sort(key=lambda r: -r.busy_us)
    concurrent = iv.concurrent_length(list(merged.values()), 2) if len(merged) > 1 else 0.0
    return StreamFigures(
        streams=rows,
        concurrent_us=concurrent,
        concurrent_share=concurrent / active_us if active_us else 0.0,
    )


def queue_lengths(gpu: Sequence[GpuEvent], ev: TraceEvents) -> dict[int, tuple[float, int]]:
    """HTA's queue length per stream -> (mean, max) of its time series.

    The length goes up by one when a launch call (QUEUE_LAUNCHES) enqueues an op and down
    by one when that op starts on the GPU; ops without such a launch call are left out.
    Like HTA's summary, the mean is over the series' samples (one per change), not
    weighted by time, and it covers the whole trace. At an equal time the launch counts
    first.
    """
    host = ev.host
    changes: dict[int, list[tuple[float, int]]] = defaultdict(list)
    is_launch: dict[str, bool] = {}
    for g in gpu:
        i = g.launch
        if i < 0:
            continue
        call = host[i]
        hit = is_launch.get(call.name)
        if hit is None:
            hit = is_launch[call.name] = call.name in QUEUE_LAUNCHES
        if hit:
            changes[g.stream].append((call.start, 1))
            changes[g.stream].append((g.start, -1))
    out: dict[int, tuple[float, int]] = {}
    for stream, items in changes.items():
        items.sort(key=lambda c: (c[0], -c[1]))
        length = 0
        total = 0
        top = 0
        for _, delta in items:
            length += delta
            total += length
            if length > top:
                top = length
        out[stream] = (total / len(items), top)
    return out
