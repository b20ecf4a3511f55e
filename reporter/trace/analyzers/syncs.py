"""Host-device synchronisations: synchronising calls and blocking copies, folded into one
sync per value read or op, by site (op and user code around it)."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import attrgetter, itemgetter

from reporter.report.trace import SyncFigures, SyncSite
from reporter.trace.analyzers.cpu_ops import MODULE_PREFIX
from reporter.trace.analyzers.names import parse_memcpy
from reporter.trace.analyzers.window import Window
from reporter.trace.events import (
    CPU_OP,
    CUDA_DRIVER,
    CUDA_RUNTIME,
    GPU_MEMCPY,
    NEST_SLACK_US,
    PYTHON_FUNCTION,
    STEP_PREFIX,
    USER_ANNOTATION,
    GpuEvent,
    HostEvent,
    TraceEvents,
)

# Host calls that block until the GPU catches up.
BLOCKING_CALLS = frozenset(
    {
        "cudaDeviceSynchronize",
        "cudaStreamSynchronize",
        "cudaEventSynchronize",
        "cudaMemcpy",
        "cuCtxSynchronize",
        "cuStreamSynchronize",
        "cuEventSynchronize",
    }
)
SYNC_CALLS = BLOCKING_CALLS | {
    "cudaMemcpy2D",
    "cudaMemcpyFromSymbol",
    "cuMemcpyDtoH",
    "cuMemcpyDtoH_v2",
    "hipDeviceSynchronize",
    "hipStreamSynchronize",
    "hipEventSynchronize",
    "hipMemcpy",
}
PAGEABLE_DTOH = "DtoH copy to pageable memory"
# Ops that read a tensor's value on the host. On a GPU tensor they hold a synchronising
# call (counted as one sync at the op); on a CPU tensor none, and they wait for nothing.
VALUE_READ_OPS = frozenset(
    {"aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero"}
)
# Python frames from libraries, not from the user's code.
_LIBRARY_FRAME = re.compile(
    r"torch/|site-packages|dist-packages|<built-in|<frozen|^typing\.py|^enum\.py|"
    r"^threading\.py|^contextlib\.py|^functools\.py|^nn\.Module:"
)


class Ranges:
    """Answers "is t inside any of these [start, end] ranges" in O(log n) (ranges may
    overlap): among the ranges starting at or before t, does the furthest end reach t?"""

    __slots__ = ("starts", "reach")

    def __init__(self, ranges: Sequence[tuple[float, float]]) -> None:
        ordered = sorted(ranges, key=itemgetter(0))
        self.starts = [s for s, _ in ordered]
        self.reach = list(accumulate((e for _, e in ordered), max))  # furthest end so far

    def __contains__(self, t: float) -> bool:
        k = bisect_right(self.starts, t)
        return k > 0 and self.reach[k - 1] >= t


def innermost_op(host: Sequence[HostEvent], index: int) -> int:
    """The innermost cpu_op enclosing host event ``index`` (-1 when none)."""
    p = host[index].parent
    while p >= 0 and host[p].cat != CPU_OP:
        p = host[p].parent
    return p


def outermost_op(host: Sequence[HostEvent], index: int) -> int:
    """The outermost cpu_op enclosing host event ``index`` (-1 when none)."""
    found = -1
    p = host[index].parent
    while p >= 0:
        if host[p].cat == CPU_OP:
            found = p
        p = host[p].parent
    return found


def user_context(ev: TraceEvents, index: int) -> str:
    """Innermost user-code frame, else module, else annotation around a host event."""
    host = ev.host
    module = annotation = ""
    p = host[index].parent
    while p >= 0:
        h = host[p]
        if h.cat == PYTHON_FUNCTION:
            if h.name.startswith(MODULE_PREFIX):
                module = module or h.name[len(MODULE_PREFIX) :]
            elif not _LIBRARY_FRAME.search(h.name):
                return h.name
        elif h.cat == USER_ANNOTATION and not annotation and not h.name.startswith(STEP_PREFIX):
            annotation = h.name
        p = h.parent
    return module or annotation


def sync_figures(
    ev: TraceEvents, window: Window, gpu: Sequence[GpuEvent], has_gpu: bool
) -> tuple[SyncFigures, list[float]]:
    """Real host-device synchronisations in the window (see ``sync_units``), by site.

    Also returns the start times of the syncs counted, for the per-step counts.
    """
    host = ev.host
    steps = Ranges([(s.start, s.end) for s in ev.steps])
    sites: dict[tuple[str, str, str], SyncSite] = {}
    out = SyncFigures(gpu_sync_events=dict(ev.gpu_sync_events))
    starts: list[float] = []
    if not has_gpu:
        return out, starts  # on a CPU-only trace item() and friends wait for no device
    units, out.value_reads_without_sync = sync_units(ev, gpu, window)
    for unit in units:
        kind, i, dur = unit.kind, unit.index, unit.wait_us
        h = host[i]
        starts.append(h.start)
        outer = outermost_op(host, i)
        op = host[outer].name if outer >= 0 else (h.name if h.cat == CPU_OP else "")
        key = (kind, op, user_context(ev, i))
        site = sites.get(key)
        if site is None:
            site = sites[key] = SyncSite(kind=kind, op=op, context=key[2])
        site.count += 1
        site.total_us += dur
        out.blocking_calls += 1
        out.blocking_us += dur
        if h.start in steps:
            site.in_steps += 1
            out.in_steps += 1
            out.in_steps_us += dur
    out.sites = sorted(sites.values(), key=lambda s: (-s.total_us, -s.count))
    if ev.steps:
        out.per_step = out.in_steps / len(ev.steps)
    return out, starts


def sync_calls(ev: TraceEvents, gpu: Sequence[GpuEvent], window: Window) -> dict[int, str]:
    """Host calls in the window that wait for the GPU -> the kind of wait.

    A synchronising runtime/driver call (SYNC_CALLS), or the launch call of a device-to-host
    copy into pageable memory (cudaMemcpyAsync then blocks until the copy is done).
    """
    host = ev.host
    lo, hi = window.start, window.end
    found: dict[int, str] = {}
    for cat in (CUDA_RUNTIME, CUDA_DRIVER):
        indices = ev.of(cat)
        # The name test first, at C level: it rules out nearly every call.
        names = map(attrgetter("name"), map(host.__getitem__, indices))
        for i in compress(indices, map(SYNC_CALLS.__contains__, names)):
            if lo <= host[i].start <= hi:
                found[i] = host[i].name
    to_pageable: dict[str, bool] = {}  # by name: parse each copy kind once
    for g in gpu:
        i = g.launch
        if g.cat != GPU_MEMCPY or i < 0 or i in found:
            continue
        hit = to_pageable.get(g.name)
        if hit is None:
            direction, _, dst = parse_memcpy(g.name)
            hit = to_pageable[g.name] = direction == "DtoH" and dst == "Pageable"
        if hit and lo <= host[i].start <= hi:
            found[i] = PAGEABLE_DTOH
    return found


def _contains(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    """Interval a holds interval b. Events that start together nest even when both last
    0 µs (microsecond traces round short calls to 0); one that starts where a ends does not."""
    return (
        a_start <= b_start
        and b_end <= a_end + NEST_SLACK_US
        and (b_start < a_end or a_start == b_start)
    )


@dataclass
class SyncUnit:
    """One real synchronisation: its kind, the host event it is counted at (the op that
    waited, else the call) and the host time spent in its synchronising calls."""

    kind: str
    index: int
    wait_us: float
    last: tuple[float, float]  # the last call added, to skip calls nested in it


def sync_units(
    ev: TraceEvents, gpu: Sequence[GpuEvent], window: Window
) -> tuple[list[SyncUnit], int]:
    """The real synchronisations, in time order per thread, and the number of value reads
    (item() and friends) that waited for no device.

    A sync is a synchronising call (``sync_calls``), counted once however many of them nest
    (a runtime call around its driver call); all those inside one outermost value read
    (aten::item, _local_scalar_dense, is_nonzero, nonzero), or else inside one innermost
    op (the aten::copy_ of a .cpu()), are that one sync, counted at the op. A value read
    with no such call inside read a CPU tensor: no sync. Its wait is the time in its
    calls (nested ones once).
    """
    host = ev.host
    lo, hi = window.start, window.end
    calls = sync_calls(ev, gpu, window)
    # Outermost value reads per thread, in start order (nested reads fold into them).
    reads: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for i in sorted(
        (i for i in ev.of(CPU_OP) if host[i].name in VALUE_READ_OPS and lo <= host[i].start <= hi),
        key=lambda i: (host[i].start, -host[i].end),
    ):
        h = host[i]
        outer = reads[h.thread]
        if outer and _contains(outer[-1][0], outer[-1][1], h.start, h.end):
            continue
        outer.append((h.start, h.end, i))
    read_starts = {t: [r[0] for r in rs] for t, rs in reads.items()}
    read_ops = {r[2] for rs in reads.values() for r in rs}
    units: list[SyncUnit] = []
    by_op: dict[int, SyncUnit] = {}  # value read or op index -> its unit
    last: dict[int, SyncUnit] = {}  # per thread: the last call counted alone
    for i in sorted(calls, key=lambda i: (host[i].thread, host[i].start, -host[i].end)):
        h = host[i]
        span = (h.start, h.end)
        op = -1
        rs = reads.get(h.thread)
        if rs:
            k = bisect_right(read_starts[h.thread], h.start) - 1
            if k >= 0 and _contains(rs[k][0], rs[k][1], h.start, h.end):
                op = rs[k][2]
        if op < 0:
            # Inside an op (a .cpu() copy: cudaMemcpyAsync to pageable memory, then
            # cudaStreamSynchronize): the op waits once, whatever calls it makes.
            op = innermost_op(host, i)
        if op >= 0:
            unit = by_op.get(op)
            if unit is None:
                unit = by_op[op] = SyncUnit(calls[i], op, 0.0, (h.start, h.start - 1.0))
                units.append(unit)
        else:
            unit = last.get(h.thread)
            if unit is None or not _contains(*unit.last, *span):
                unit = last[h.thread] = SyncUnit(calls[i], i, 0.0, (h.start, h.start - 1.0))
                units.append(unit)
        if not _contains(*unit.last, *span):  # not nested in the call counted before it
            unit.wait_us += h.end - h.start
            unit.last = span
    without = len(read_ops - set(by_op))
    return units, without
