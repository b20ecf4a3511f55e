"""Figures of one rank's trace: window, steps, GPU time breakdown, kernels, launches, syncs.

Small pure functions over the records of ``events.py``; ``analyse_rank`` puts them
together into a ``RankFigures``. The definitions are in ``reporter/report/trace.py``.
"""

from __future__ import annotations

import re
import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import attrgetter, itemgetter

from reporter.report.trace import (
    Breakdown,
    CommFigures,
    GpuFigures,
    IdleSplit,
    KernelRow,
    LaunchFigures,
    MemcpyFigures,
    MemcpyRow,
    MemoryPeak,
    ModuleRow,
    NameTime,
    OpRow,
    RankFigures,
    StepFigures,
    StreamFigures,
    StreamRow,
    SyncFigures,
    SyncSite,
    TensorCoreFigures,
)
from reporter.trace import intervals as iv
from reporter.trace import peers
from reporter.trace.events import (
    CPU_OP,
    CUDA_DRIVER,
    CUDA_RUNTIME,
    GPU_MEMCPY,
    KERNEL,
    NEST_SLACK_US,
    PYTHON_FUNCTION,
    STEP_PREFIX,
    USER_ANNOTATION,
    GpuEvent,
    HostEvent,
    TraceEvents,
)
from reporter.trace.intervals import Timeline

SHORT_GAP_US = 10.0  # a GPU gap this short with work queued is launch latency, not waste
TINY_KERNEL_US = 10.0  # kernels shorter than this are dominated by launch cost
SLOW_CALL_US = 50.0  # runtime calls longer than this stall the launching thread
TOP_KERNELS = 15
TOP_OPS = 15


class NoCase:
    """A case-insensitive search that stays fast on long names.

    Python's re runs 10-20x slower with IGNORECASE on alternations of literals (kernel
    names run to 2 kB: 0.1 s on a trace with 200 of them). ASCII text is lowercased once
    and searched case-sensitively, which finds the same matches for this lowercase,
    ASCII pattern; other text uses re.IGNORECASE. Only truth values are used.
    """

    __slots__ = ("folded", "nocase")

    def __init__(self, pattern: str) -> None:
        if pattern != pattern.lower() or not pattern.isascii():
            raise ValueError(f"NoCase patterns are lowercase ASCII: {pattern!r}")
        self.folded = re.compile(pattern)
        self.nocase = re.compile(pattern, re.IGNORECASE)

    def search(self, text: str) -> bool:
        if text.isascii():
            return self.folded.search(text.lower()) is not None
        return self.nocase.search(text) is not None


# Kernel name families that run on Tensor Cores (cuBLAS/cuDNN/CUTLASS naming): tensorop,
# xmma, hmma/imma, (w)gmma, and MMA instruction shapes such as s1688, h884, 16816.
_TENSOR_CORE = NoCase(r"tensorop|xmma|hmma|imma|wgmma|gmma_|[hsi]884|[hsi]1688|16816|8816")
# Reduced-precision GEMM/conv kernels that name only their data type (ampere_bf16_..).
_TENSOR_CORE_TYPES = NoCase(r"tf32|bf16|fp16|f16|int8")
# GEMM and convolution kernels: the work that Tensor Cores could run.
_MATMUL_CONV = NoCase(r"gemm|conv|winograd|fft2d|scudnn|dgrad|wgrad|fprop|implicit_gemm")
# Helper kernels around a convolution or GEMM that do no matrix math themselves.
_NOT_MATMUL = NoCase(
    r"fbgemm|offsets|nchwtonhwc|nhwctonchw|generatewinogradtiles|reducesplitk|"
    r"reduce_wgrad|scalepacked|splitkreduce"
)
_NAMESPACE = re.compile(r"\b\w+::")
_BRACKET = re.compile(r"[<>(]")
_LAUNCH_CALL = re.compile(r"LaunchKernel|cuLaunch|LaunchCooperative|cudaGraphLaunch")
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
# DataLoader iteration however recorded: torch's "enumerate(DataLoader)#..__next__" and
# "enumerate(DataPipe)#.." ranges (user annotations, or cpu_op in older traces), their
# Python frames (dataloader.py, _next_data), and ranges users name after data loading.
_DATALOADER = NoCase(r"dataloader|datapipe|data_load|_next_data")
_MEMCPY_NAME = re.compile(r"Memcpy\s+(\w+)\s*\((\w+)\s*->\s*(\w+)\)")
# Python frames from libraries, not from the user's code.
_LIBRARY_FRAME = re.compile(
    r"torch/|site-packages|dist-packages|<built-in|<frozen|^typing\.py|^enum\.py|"
    r"^threading\.py|^contextlib\.py|^functools\.py|^nn\.Module:"
)
MODULE_PREFIX = "nn.Module: "


@dataclass
class Window:
    start: float
    end: float

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)


# --------------------------------------------------------------------------- names


def short_kernel_name(name: str, limit: int = 90) -> str:
    """A kernel name a person can read: no return type, argument list or namespaces inside
    the template arguments, at most ``limit`` characters.

    'void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>,
    at::detail::Array<char*, 3> >(int, ...)' ->
    'at::native::vectorized_elementwise_kernel<4, CUDAFunctor_add<float>, Array<char*, 3> >'
    """
    s = name[5:] if name.startswith("void ") else name
    s = s.replace("(anonymous namespace)::", "")
    depth = 0
    for m in _BRACKET.finditer(s):  # only the brackets, not every character of 2 kB names
        ch = m.group()
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0 and m.start() > 0:
            s = s[: m.start()]  # the argument list
            break
    k = s.find("<")
    if k > 0:
        s = s[:k] + _NAMESPACE.sub("", s[k:])
    s = s.strip()
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s or name


def is_tensor_core_kernel(name: str) -> bool:
    """By name: an MMA family, or a GEMM/conv kernel in a Tensor Core data type."""
    if _TENSOR_CORE.search(name):
        return True
    return is_matmul_or_conv_kernel(name) and _TENSOR_CORE_TYPES.search(name)


def is_matmul_or_conv_kernel(name: str) -> bool:
    return _MATMUL_CONV.search(name) and not _NOT_MATMUL.search(name)


def parse_memcpy(name: str) -> tuple[str, str, str]:
    """'Memcpy HtoD (Pageable -> Device)' -> ('HtoD', 'Pageable', 'Device')."""
    m = _MEMCPY_NAME.search(name)
    if m:
        return m.group(1), m.group(2), m.group(3)
    parts = name.split()
    return (parts[1] if len(parts) > 1 else name), "", ""


# --------------------------------------------------------------------------- window


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


# --------------------------------------------------------------------------- GPU time


@dataclass
class Timelines:
    """Merged intervals of each kind of GPU op inside the window."""

    compute: Timeline  # non-collective kernels
    communication: Timeline  # collective kernels
    kernels: Timeline  # all kernels
    with_memcpy: Timeline  # kernels and copies
    active: Timeline  # every GPU op


def timelines(gpu_sorted: Sequence[GpuEvent], window: Window) -> Timelines:
    """The five merged timelines, clipped to the window.

    One pass splits the ops' clipped intervals into compute, communication, copies and
    memsets (each list stays in start order); each is merged once and the wider timelines
    are unions of narrower merged lists, so no op is looked at more than once in Python.
    """
    lo, hi = window.start, window.end
    compute: list[iv.Interval] = []
    comm: list[iv.Interval] = []
    copies: list[iv.Interval] = []
    others: list[iv.Interval] = []  # memsets
    kernel = KERNEL
    memcpy = GPU_MEMCPY
    for g in gpu_sorted:
        s, e = g.start, g.end
        if e <= lo or s >= hi:
            continue
        if s < lo:
            s = lo
        if e > hi:
            e = hi
        cat = g.cat
        if cat == kernel:
            (comm if g.collective else compute).append((s, e))
        elif cat == memcpy:
            copies.append((s, e))
        else:
            others.append((s, e))
    computed = iv.merge(compute, presorted=True)
    communication = iv.merge(comm, presorted=True)
    kernels = iv.union(computed, communication)
    with_memcpy = iv.union(kernels, iv.merge(copies, presorted=True))
    active = iv.union(with_memcpy, iv.merge(others, presorted=True))
    # A union with nothing to add returns its input itself: share that list's Timeline.
    made: dict[int, Timeline] = {}
    for merged in (computed, communication, kernels, with_memcpy, active):
        if id(merged) not in made:
            made[id(merged)] = Timeline(merged)
    return Timelines(
        made[id(computed)],
        made[id(communication)],
        made[id(kernels)],
        made[id(with_memcpy)],
        made[id(active)],
    )


def breakdown_in(t: Timelines, lo: float, hi: float) -> Breakdown:
    """Priority breakdown of [lo, hi]: compute > communication > memcpy > memset > idle."""
    k = t.compute.within(lo, hi)
    kc = t.kernels.within(lo, hi)
    kcm = t.with_memcpy.within(lo, hi)
    a = t.active.within(lo, hi)
    return Breakdown(
        compute_us=k,
        communication_us=kc - k,
        memcpy_us=kcm - kc,
        memset_us=a - kcm,
        idle_us=max(0.0, (hi - lo) - a),
    )


@dataclass
class GapTimelines:
    """The idle gaps, all and by kind, for per-step sums."""

    all: Timeline
    host_wait: Timeline
    short_gap: Timeline
    other: Timeline
    short_us: float

    def split(self, lo: float, hi: float) -> IdleSplit:
        return IdleSplit(
            host_wait_us=self.host_wait.within(lo, hi),
            short_gap_us=self.short_gap.within(lo, hi),
            other_us=self.other.within(lo, hi),
            gaps=self.all.count(lo, hi),
            short_gap_threshold_us=self.short_us,
        )


def idle_gaps(
    gpu_sorted: Sequence[GpuEvent], host: Sequence[HostEvent], window: Window, short_us: float
) -> GapTimelines:
    """Gaps with no GPU op running in the window, each classified by the op that ends it.

    host_wait: the next op's launch call began at or after the gap began (nothing queued);
    short_gap: it was queued and the gap is at most ``short_us``; other: queued but longer,
    or launch unknown. A gap at the window's end with no later op is host_wait.
    Each gap goes straight into its kind's list (no per-gap object, no filtering after).
    """
    lo, hi = window.start, window.end
    gaps: list[iv.Interval] = []
    host_wait: list[iv.Interval] = []
    short_gap: list[iv.Interval] = []
    other: list[iv.Interval] = []
    busy_until = lo
    for g in gpu_sorted:
        end = g.end
        if end <= busy_until:
            continue
        start = g.start
        if start > busy_until:
            gap_start = busy_until
            if gap_start >= hi:
                break
            gap = (gap_start, hi if hi < start else start)  # min(start, hi)
            gaps.append(gap)
            if g.launch < 0:
                other.append(gap)
            elif not host[g.launch].start < gap_start:  # launched once the GPU ran dry
                host_wait.append(gap)
            elif start - gap_start <= short_us:
                short_gap.append(gap)
            else:
                other.append(gap)
        if end > busy_until:  # max(busy_until, end)
            busy_until = end
        if busy_until >= hi:
            break
    if busy_until < hi:
        gaps.append((busy_until, hi))
        host_wait.append((busy_until, hi))
    return GapTimelines(
        Timeline(gaps), Timeline(host_wait), Timeline(short_gap), Timeline(other), short_us
    )


# --------------------------------------------------------------------------- kernels


def launching_ops(ev: TraceEvents, gpu: Sequence[GpuEvent]) -> dict[int, str]:
    """Launch call index -> the innermost cpu_op around it (else the innermost annotation)."""
    host = ev.host
    out: dict[int, str] = {}
    for g in gpu:
        i = g.launch
        if i < 0 or i in out:
            continue
        annotation = ""
        p = host[i].parent
        while p >= 0:
            h = host[p]
            if h.cat == CPU_OP:
                break
            if h.cat == USER_ANNOTATION and not annotation:
                annotation = h.name
            p = h.parent
        out[i] = host[p].name if p >= 0 else annotation
    return out


def kernel_rows(kernels: Sequence[GpuEvent], launched_by: dict[int, str]) -> list[KernelRow]:
    """Kernels grouped by name, most time first, with the op that launched them most."""
    # One pass: per name its durations (in trace order, so every sum below adds the same
    # numbers in the same order as summing per kernel) and the time per launching op.
    durations: list[float] = []
    groups: dict[str, tuple[list[float], dict[str, float], bool]] = {}
    for g in kernels:
        d = g.end - g.start
        durations.append(d)
        group = groups.get(g.name)
        if group is None:
            group = groups[g.name] = ([], {}, g.collective)
        group[0].append(d)
        op = launched_by.get(g.launch)
        if op:
            by_op = group[1]
            by_op[op] = by_op.get(op, 0.0) + d
    total = sum(durations) or 1.0
    rows = []
    for name, (durs, by_op, collective) in groups.items():
        t = sum(durs)
        rows.append(
            KernelRow(
                name=name,
                short_name=short_kernel_name(name),
                count=len(durs),
                total_us=t,
                mean_us=t / len(durs),
                max_us=max(durs),
                share=t / total,
                # The first op with the most time, as Counter.most_common(1) picks it.
                launched_by=max(by_op, key=by_op.__getitem__) if by_op else "",
                category="communication" if collective else "compute",
                tensor_core=is_tensor_core_kernel(name),
                matmul_or_conv=is_matmul_or_conv_kernel(name),
            )
        )
    rows.sort(key=lambda r: (-r.total_us, r.name))
    return rows


def tensor_core_figures(rows: Sequence[KernelRow], capable: bool | None) -> TensorCoreFigures:
    total = sum(r.total_us for r in rows) or 1.0
    tc = sum(r.total_us for r in rows if r.tensor_core)
    mm = sum(r.total_us for r in rows if r.matmul_or_conv)
    not_tc = [r for r in rows if r.matmul_or_conv and not r.tensor_core]
    not_tc_us = sum(r.total_us for r in not_tc)
    if capable is None and tc > 0:
        capable = True  # Tensor Core kernels ran, so the device has them
    return TensorCoreFigures(
        available=capable,
        tensor_core_us=tc,
        share=tc / total,
        matmul_conv_us=mm,
        not_tensor_core_us=not_tc_us,
        not_tensor_core_share=not_tc_us / total,
        top_not_tensor_core=list(not_tc[:5]),
    )


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
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
        launch_delay_p90_us=_percentile(delays, 0.9),
        runtime_us=runtime_us,
        launch_call_us=launch_us,
        slow_calls=slow_n,
        slow_call_us=slow_us,
        slow_call_threshold_us=SLOW_CALL_US,
        slow_call_names=sorted(slow.values(), key=lambda r: -r.total_us)[:5],
        kernels_per_ms=n / ms if ms > 0 else 0.0,
    )


def memcpy_figures(copies: Sequence[GpuEvent]) -> MemcpyFigures:
    out = MemcpyFigures()
    rows: dict[tuple[str, str, str], MemcpyRow] = {}
    kinds: dict[str, tuple[str, str, str]] = {}  # by name: parse each copy kind once
    for g in copies:
        kind = kinds.get(g.name)
        if kind is None:
            kind = kinds[g.name] = parse_memcpy(g.name)
        direction, src, dst = kind
        row = rows.get((direction, src, dst))
        if row is None:
            row = rows[(direction, src, dst)] = MemcpyRow(direction, src, dst)
        d = g.end - g.start
        row.count += 1
        row.bytes += g.bytes
        row.total_us += d
        out.count += 1
        out.bytes += g.bytes
        out.total_us += d
        if "Pageable" in (src, dst):
            out.pageable_count += 1
            out.pageable_bytes += g.bytes
            out.pageable_us += d
    out.rows = sorted(rows.values(), key=lambda r: -r.total_us)
    return out


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


# --------------------------------------------------------------------------- host side


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


def cpu_op_tables(ev: TraceEvents, window: Window) -> tuple[list[OpRow], list[ModuleRow], float]:
    """Top CPU ops by self time and the nn.Module paths they ran in."""
    host = ev.host
    order = ev.host_order
    has_modules = any(host[i].name.startswith(MODULE_PREFIX) for i in ev.of(PYTHON_FUNCTION))
    module_path = _module_paths(host, order) if has_modules else None
    lo, hi = window.start, window.end
    ops = [i for i in ev.of(CPU_OP) if lo <= host[i].start <= hi]
    child_time = dict.fromkeys(ops, 0.0)
    cpu_op = CPU_OP
    for i in ops:
        h = host[i]
        p = h.parent
        while p >= 0:  # up to the nearest enclosing op
            above = host[p]
            if above.cat == cpu_op:
                break
            p = above.parent
        if p in child_time:
            child_time[p] += h.end - h.start
    # name -> [count, self, total]; plain lists keep this 100k-op loop cheap
    stats: dict[str, list[float]] = {}
    by_module: dict[str, list[float]] = {}  # module -> [self, ops]
    op_modules: dict[str, Counter[str]] = defaultdict(Counter)
    total_self = 0.0
    for i in ops:
        h = host[i]
        dur = h.end - h.start
        self_us = dur - child_time[i]
        if self_us < 0.0:
            self_us = 0.0
        total_self += self_us
        row = stats.get(h.name)
        if row is None:
            stats[h.name] = [1, self_us, dur]
        else:
            row[0] += 1
            row[1] += self_us
            row[2] += dur
        if module_path is not None and module_path[i]:
            m = module_path[i]
            op_modules[h.name][m] += self_us
            mrow = by_module.setdefault(m, [0.0, 0])
            mrow[0] += self_us
            mrow[1] += 1
    top_names = sorted(stats, key=lambda n: (-stats[n][1], n))[:TOP_OPS]
    top = []
    for name in top_names:
        count, self_us, total = stats[name]
        modules = op_modules.get(name)
        top.append(
            OpRow(
                name=name,
                count=int(count),
                self_us=self_us,
                total_us=total,
                module=modules.most_common(1)[0][0] if modules else "",
            )
        )
    top_modules = [
        ModuleRow(module=m, self_us=v[0], ops=int(v[1]))
        for m, v in sorted(by_module.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP_OPS]
    ]
    return top, top_modules, total_self


def _module_paths(host: Sequence[HostEvent], order: Sequence[int]) -> list[str]:
    """For each host event, the path of nn.Module frames around it ('' without stacks)."""
    out = [""] * len(host)
    for i in order:
        p = host[i].parent
        if p < 0:
            continue
        above = out[p]
        ph = host[p]
        if ph.cat == PYTHON_FUNCTION and ph.name.startswith(MODULE_PREFIX):
            name = ph.name[len(MODULE_PREFIX) :]
            out[i] = f"{above}/{name}" if above else name
        else:
            out[i] = above
    return out


def is_dataloader(name: str) -> bool:
    return not name.startswith("aten::") and _DATALOADER.search(name)


def dataloader_intervals(ev: TraceEvents) -> list[iv.Interval]:
    """Ranges spent fetching data: DataLoader/DataPipe iteration or ranges naming data
    loading, whether recorded as annotations, Python frames or ops."""
    verdict: dict[str, bool] = {}  # names repeat: classify each once
    found = []
    for i in ev.of(USER_ANNOTATION, PYTHON_FUNCTION, CPU_OP):
        h = ev.host[i]
        hit = verdict.get(h.name)
        if hit is None:
            hit = verdict[h.name] = is_dataloader(h.name)
        if hit:
            found.append((h.start, h.end))
    return iv.merge(found)


def memory_peaks(ev: TraceEvents) -> list[MemoryPeak]:
    peaks: dict[str, MemoryPeak] = {}
    for m in ev.memory:
        p = peaks.get(m.device)
        if p is None:
            p = peaks[m.device] = MemoryPeak(m.device)
        p.peak_allocated_bytes = max(p.peak_allocated_bytes, m.allocated)
        p.peak_reserved_bytes = max(p.peak_reserved_bytes, m.reserved)
    capacity = {f"cuda:{d.id}": d.total_memory for d in ev.devices if d.total_memory}
    for p in peaks.values():
        p.capacity_bytes = capacity.get(p.device)
        if p.capacity_bytes:
            p.share = p.peak_allocated_bytes / p.capacity_bytes
    return sorted(peaks.values(), key=lambda p: p.device)


# --------------------------------------------------------------------------- one rank


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
    fig.dataloader_share = fig.dataloader_us / window.length if window.length else None

    gaps: GapTimelines | None = None
    kernel_starts = [g.start for g in kernels]  # sorted: gpu is sorted by start
    t: Timelines | None = None
    if gpu:
        t = timelines(gpu, window)
        gaps = idle_gaps(gpu, host, window, SHORT_GAP_US)
        rows = kernel_rows(kernels, launched_by)
        fig.top_kernels = rows[:TOP_KERNELS]
        peers.add_sm_to_rows(fig.top_kernels, kernels)
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
    fig.dataloader_exposed_share = (
        fig.dataloader_exposed_us / window.length if window.length else None
    )
    fig.syncs, step_syncs = sync_figures(ev, window, gpu, bool(gpu))
    step_syncs.sort()
    fig.cpu_ops, fig.cpu_modules, fig.cpu_op_self_us = cpu_op_tables(ev, window)
    fig.memory = memory_peaks(ev)
    fig.host_comm_us, fig.host_collectives = peers.host_collectives(ev, window.start, window.end)
    fig.host_comm_share = fig.host_comm_us / window.length if window.length else None
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


def add_peer_figures(g: GpuFigures, ev: TraceEvents, gpu: Sequence[GpuEvent]) -> None:
    """HTA's launch-to-start delay and queue lengths, tb-profiler's utilisation window."""
    delays = peers.launch_to_start(gpu, ev)
    if delays:
        g.launch.launch_to_start_median_us = statistics.median(delays)
        g.launch.launch_to_start_mean_us = sum(delays) / len(delays)
        g.launch.launch_to_start_p90_us = _percentile(delays, 0.9)
        g.launch.launch_to_start_max_us = delays[-1]
    queues = peers.queue_lengths(gpu, ev)
    for row in g.streams.streams:
        if row.stream in queues:
            row.queue_mean, row.queue_max = queues[row.stream]
    lo, hi = peers.tb_window(ev)
    g.tb_window_us = max(0.0, hi - lo)
    if hi > lo:
        # Busy time in tb's window: kernels merged over the whole trace, then clipped.
        g.tb_utilisation = iv.length(iv.clip(all_kernels(gpu), lo, hi)) / (hi - lo)
        # Over tb's window too, as tb-profiler defines them (so the figures compare).
        every_kernel = [k for k in gpu if k.cat == KERNEL]
        g.sm_efficiency = peers.sm_efficiency(every_kernel, lo, hi)
        g.occupancy = peers.occupancy(every_kernel, lo, hi)


def all_kernels(gpu: Sequence[GpuEvent]) -> list[iv.Interval]:
    """The union of every kernel's interval (gpu sorted by start)."""
    return iv.merge(((g.start, g.end) for g in gpu if g.cat == KERNEL), presorted=True)


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
