"""Figures of one rank's trace: the front door to the analyzers, one per concern.

``analyse_rank`` runs them over the records of ``events.py`` and puts their figures
together into a ``RankFigures`` (definitions in ``reporter/report/trace.py``). Each
analyzer in ``reporter/trace/analyzers/`` is a module of small pure functions:

- window: the analysed window, the steps' windows, the main device, tb-profiler's window
- breakdown: GPU time by kind of op, and the idle gaps by cause
- kernels: top kernels, Tensor Core use, SM efficiency and occupancy
- launches: tiny kernels, launch delays, runtime calls
- memcpy, queues (streams), communication, syncs, cpu_ops, dataloading, memory
- roofline: ops with FLOPs against the device's published ceilings
- names: what a kernel or copy name says (shared)
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence

from reporter.report.trace import GpuFigures, NameTime, RankFigures, StepFigures
from reporter.trace import intervals as iv
from reporter.trace.analyzers.breakdown import (
    SHORT_GAP_US,
    GapTimelines,
    Timelines,
    all_kernels,
    breakdown_in,
    idle_gaps,
    timelines,
)
from reporter.trace.analyzers.communication import comm_figures, host_collectives
from reporter.trace.analyzers.cpu_ops import cpu_op_tables
from reporter.trace.analyzers.dataloading import dataloader_intervals
from reporter.trace.analyzers.kernels import (
    TOP_KERNELS,
    add_sm_to_rows,
    kernel_rows,
    launching_ops,
    occupancy,
    sm_efficiency,
    tensor_core_figures,
)
from reporter.trace.analyzers.launches import launch_figures, launch_to_start, percentile
from reporter.trace.analyzers.memcpy import memcpy_figures
from reporter.trace.analyzers.memory import memory_peaks
from reporter.trace.analyzers.queues import queue_lengths, stream_figures
from reporter.trace.analyzers.roofline import trace_roofline
from reporter.trace.analyzers.syncs import sync_figures
from reporter.trace.analyzers.window import (
    Window,
    main_device,
    sorted_ops,
    step_windows,
    tb_window,
    trace_window,
)
from reporter.trace.events import GPU_MEMCPY, KERNEL, GpuEvent, TraceEvents
from reporter.trace.intervals import Timeline


def analyse_rank(ev: TraceEvents, rank: int, rank_known: bool) -> RankFigures:
    """Every figure of one trace file (one rank)."""
    notes: list[str] = []
    ops_per_device = Counter(g.device for g in ev.gpu)
    device = main_device(ops_per_device)
    gpu = sorted_ops(
        ev.gpu if len(ops_per_device) < 2 else [g for g in ev.gpu if g.device == device]
    )
    devices_seen = sorted(ops_per_device)
    if len(devices_seen) > 1:
        notes.append(
            f"GPU ops ran on devices {', '.join(map(str, devices_seen))}: the GPU figures cover "
            f"device {device}, which ran the most"
        )
    window = trace_window(ev, gpu)
    host = ev.host
    info = next((d for d in ev.devices if d.id == device), None)
    if info is None and ev.devices and device is None:
        info = ev.devices[0]
    capable = None
    if info is not None and info.major is not None:
        capable = info.major >= 7

    fig = RankFigures(
        rank=rank,
        file=ev.source,
        rank_known=rank_known,
        world_size=ev.world_size,
        backend=ev.backend,
        events=ev.event_count,
        device_name=info.name if info else "",
        device_memory_bytes=info.total_memory if info else None,
        compute_capability=(
            f"{info.major}.{info.minor}" if info and info.major is not None else ""
        ),
        window_us=window.length,
        step_count=len(ev.steps),
    )
    _describe_trace(ev, gpu, window, rank, rank_known, notes)

    kernels = [g for g in gpu if g.cat == KERNEL and window.start <= g.start < window.end]
    if not kernels and window.length == 0 and gpu:
        kernels = [g for g in gpu if g.cat == KERNEL]  # a window of one instant
    launched_by = launching_ops(ev, gpu)
    steps = step_windows(ev, window)
    dl_merged = iv.clip(dataloader_intervals(ev), window.start, window.end)
    dl = Timeline(dl_merged)
    fig.dataloader_us = dl.within(window.start, window.end)
    fig.dataloader_share = _share(fig.dataloader_us, window)

    gaps: GapTimelines | None = None
    kernel_starts = [g.start for g in kernels]  # sorted: gpu is sorted by start
    t: Timelines | None = None
    if gpu:
        t = timelines(gpu, window)
        gaps = idle_gaps(gpu, host, window, SHORT_GAP_US)
        rows = kernel_rows(kernels, launched_by)
        fig.top_kernels = rows[:TOP_KERNELS]
        add_sm_to_rows(fig.top_kernels, kernels)
        lo, hi = window.start, window.end
        runtime = [h for h in map(host.__getitem__, ev.calls()) if lo <= h.start <= hi]
        busy = t.kernels.length
        active = t.active.length
        window_copies = [
            g for g in gpu if g.cat == GPU_MEMCPY and window.start <= g.start < window.end
        ]
        fig.gpu = GpuFigures(
            device=device if device is not None else 0,
            busy_us=busy,
            active_us=active,
            utilisation=busy / window.length if window.length else 0.0,
            kernel_count=len(kernels),
            kernel_sum_us=sum(g.end - g.start for g in kernels),
            breakdown=breakdown_in(t, window.start, window.end),
            idle=gaps.split(window.start, window.end),
            tensor_cores=tensor_core_figures(rows, capable),
            launch=launch_figures(kernels, host, runtime, window),
            memcpy=memcpy_figures(window_copies),
            streams=stream_figures(gpu, window, active),
            communication=comm_figures(kernels, t, window),
        )
        add_peer_figures(fig.gpu, ev, gpu)
    # tb-profiler's DataLoader time: data loading while no kernel, memcpy or memset ran.
    exposed = Timeline(iv.subtract(dl_merged, t.active.merged) if t is not None else dl_merged)
    fig.dataloader_exposed_us = exposed.length
    fig.dataloader_exposed_share = _share(fig.dataloader_exposed_us, window)
    fig.syncs, step_syncs = sync_figures(ev, window, gpu, bool(gpu))
    step_syncs.sort()
    fig.cpu_ops, fig.cpu_modules, fig.cpu_op_self_us = cpu_op_tables(ev, window)
    fig.memory = memory_peaks(ev)
    fig.host_comm_us, fig.host_collectives = host_collectives(ev, window.start, window.end)
    fig.host_comm_share = _share(fig.host_comm_us, window)
    if ev.op_shapes:
        roofline = trace_roofline(ev, kernels, fig.device_name, window)
        fig.roofline = roofline if roofline.calls or roofline.notes else None
    fig.bad_events = ev.bad_events
    fig.bad_event_names = [NameTime(n, c) for n, c in ev.bad_event_names.most_common(10)]

    for step, w in zip(ev.steps, steps, strict=True):
        sf = StepFigures(
            name=step.name,
            number=step.number,
            start_us=step.start - window.start,
            duration_us=step.end - step.start,
            window_us=w.length,
            dataloader_us=dl.within(w.start, w.end),
            dataloader_exposed_us=exposed.within(w.start, w.end),
            # The syncs with step.start <= ts <= step.end, by bisection.
            syncs=max(0, bisect_right(step_syncs, step.end) - bisect_left(step_syncs, step.start)),
        )
        if t is not None:
            sf.breakdown = breakdown_in(t, w.start, w.end)
            sf.gpu_busy_us = sf.breakdown.compute_us + sf.breakdown.communication_us
            sf.utilisation = sf.gpu_busy_us / w.length if w.length else 0.0
            sf.idle = gaps.split(w.start, w.end) if gaps is not None else None
            sf.kernels = bisect_left(kernel_starts, w.end) - bisect_left(kernel_starts, w.start)
        fig.steps.append(sf)

    durations = [s.end - s.start for s in ev.steps]
    if durations:
        fig.step_time_us = sum(durations) / len(durations)
        fig.step_time_median_us = statistics.median(durations)
    per = max(1, len(ev.steps))
    if fig.gpu is not None:
        fig.compute_per_step_us = fig.gpu.breakdown.compute_us / per
        fig.communication_per_step_us = fig.gpu.communication.total_us / per
        fig.idle_per_step_us = fig.gpu.breakdown.idle_us / per
    fig.notes = notes
    return fig


def _share(us: float, window: Window) -> float | None:
    """A time as a share of the window; None for a window of one instant."""
    return us / window.length if window.length else None


def add_peer_figures(g: GpuFigures, ev: TraceEvents, gpu: Sequence[GpuEvent]) -> None:
    """HTA's launch-to-start delay and queue lengths, tb-profiler's utilisation window."""
    delays = launch_to_start(gpu, ev)
    if delays:
        g.launch.launch_to_start_median_us = statistics.median(delays)
        g.launch.launch_to_start_mean_us = sum(delays) / len(delays)
        g.launch.launch_to_start_p90_us = percentile(delays, 0.9)
        g.launch.launch_to_start_max_us = delays[-1]
    queues = queue_lengths(gpu, ev)
    for row in g.streams.streams:
        if row.stream in queues:
            row.queue_mean, row.queue_max = queues[row.stream]
    lo, hi = tb_window(ev)
    g.tb_window_us = max(0.0, hi - lo)
    if hi > lo:
        # Busy time in tb's window: kernels merged over the whole trace, then clipped.
        g.tb_utilisation = iv.length(iv.clip(all_kernels(gpu), lo, hi)) / (hi - lo)
        # Over tb's window too, as tb-profiler defines them (so the figures compare).
        every_kernel = [k for k in gpu if k.cat == KERNEL]
        g.sm_efficiency = sm_efficiency(every_kernel, lo, hi)
        g.occupancy = occupancy(every_kernel, lo, hi)


def _describe_trace(
    ev: TraceEvents,
    gpu: Sequence[GpuEvent],
    window: Window,
    rank: int,
    rank_known: bool,
    notes: list[str],
) -> None:
    """Plain statements about what the trace lacks, so no figure is misread."""
    if not ev.steps:
        span = "first to last GPU op" if gpu else "first to last CPU event"
        notes.append(f"no ProfilerStep in this trace: figures cover the whole trace ({span})")
    else:
        last_end = max(s.end for s in ev.steps)
        tail = window.end - last_end
        if tail > 1.0:
            notes.append(
                f"GPU work of the last step ran {tail / 1000:.1f} ms past the step's end on "
                "the CPU: the window runs to the end of that work"
            )
    if not gpu:
        runtime_calls = len(ev.calls())
        if runtime_calls:
            notes.append(
                f"the trace has {runtime_calls} CUDA runtime calls but no kernel, memcpy or "
                "memset events (recorded without CUPTI activity tracing?): GPU time cannot "
                "be measured"
            )
        else:
            notes.append("no GPU activity in this trace: CPU-only figures (ops and modules)")
    elif not ev.devices:
        notes.append(
            "no deviceProperties in this trace: device name, memory size and Tensor Core "
            "capability are unknown"
        )
    if not rank_known:
        notes.append(f"no distributedInfo in this trace: it is numbered rank {rank} by file order")
    unlinked = sum(1 for g in gpu if g.launch < 0)
    if gpu and unlinked:
        notes.append(
            f"{unlinked} of {len(gpu)} GPU ops could not be linked to their launch call (no "
            "matching correlation id or ac2g flow): their launching op and launch delay are "
            "unknown"
        )
    if ev.linked_by_flow:
        notes.append(f"{ev.linked_by_flow} GPU ops were linked to their launch by ac2g flow events")
    if ev.bad_events:
        names = ", ".join(f"{n} ×{c}" for n, c in ev.bad_event_names.most_common(5))
        notes.append(
            f"{ev.bad_events} events were left out for unusable times (NaN, infinite or "
            f"non-numeric timestamp, or negative duration): {names}"
        )
    if ev.other_categories:
        parts = ", ".join(f"{n} {c}" for c, n in ev.other_categories.most_common(5))
        notes.append(f"events not analysed: {parts}")
