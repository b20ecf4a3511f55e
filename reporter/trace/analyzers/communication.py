"""Communication: collective kernels (NCCL/RCCL) and their overlap with compute, and
host-side collectives (gloo, MPI, UCC), which tb-profiler counts as communication."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import attrgetter, methodcaller

from reporter.report.trace import CommFigures, NameTime
from reporter.trace import intervals as iv
from reporter.trace.analyzers.breakdown import Timelines
from reporter.trace.analyzers.names import short_kernel_name
from reporter.trace.analyzers.window import Window
from reporter.trace.events import CPU_OP, USER_ANNOTATION, GpuEvent, TraceEvents

# Collectives that run on the CPU: gloo (and MPI/UCC) record each one as a host range
# named "<backend>:<collective>"; NCCL's run as kernels and are counted there.
HOST_COLLECTIVE_PREFIXES = ("gloo:", "mpi:", "ucc:")


def comm_figures(kernels: Sequence[GpuEvent], t: Timelines, window: Window) -> CommFigures:
    comm = [g for g in kernels if g.collective]
    total = t.communication.length
    overlapped = iv.intersection_length(t.communication.merged, t.compute.merged)
    names: dict[str, NameTime] = {}
    short: dict[str, str] = {}  # by full name: shorten each name once
    for g in comm:
        key = short.get(g.name)
        if key is None:
            key = short[g.name] = short_kernel_name(g.name)
        row = names.setdefault(key, NameTime(key))
        row.count += 1
        row.total_us += g.end - g.start
    return CommFigures(
        kernels=len(comm),
        total_us=total,
        overlapped_us=overlapped,
        exposed_us=total - overlapped,
        overlap_share=overlapped / total if total else 0.0,
        share_of_window=total / window.length if window.length else 0.0,
        collectives=sorted(names.values(), key=lambda r: -r.total_us),
    )


def host_collectives(ev: TraceEvents, lo: float, hi: float) -> tuple[float, list[NameTime]]:
    """Host-side collectives (gloo) in [lo, hi]: the union of their ranges and, per name,
    calls and summed time (clipped to the window)."""
    host = ev.host
    ranges: list[iv.Interval] = []
    rows: dict[str, NameTime] = {}
    indices = ev.of(CPU_OP, USER_ANNOTATION)
    # The name test at C level first: it rules out nearly every event.
    names = map(attrgetter("name"), map(host.__getitem__, indices))
    for i in compress(indices, map(methodcaller("startswith", HOST_COLLECTIVE_PREFIXES), names)):
        h = host[i]
        s = lo if h.start < lo else h.start
        e = hi if h.end > hi else h.end
        if e < s or (e == s and not lo <= h.start <= hi):
            continue
        ranges.append((s, e))
        row = rows.get(h.name)
        if row is None:
            row = rows[h.name] = NameTime(h.name)
        row.count += 1
        row.total_us += e - s
    return iv.length(iv.merge(ranges)), sorted(rows.values(), key=lambda r: (-r.total_us, r.name))
