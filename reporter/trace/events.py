"""Kineto trace events -> compact records: host events, GPU ops, steps, memory samples.

One pass (``normalise``) over the decoded events (``decode.py``) keeps only what the
analysis reads (a few fields per event, not the args), so they can be dropped right after. Then host events are
nested per thread (``parent``) and GPU ops are linked to the runtime call that launched
them: by correlation id, or by the ``ac2g`` flow events where an op has none.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import msgspec

from reporter.trace.intervals import sort_ties

# Host-side ("CPU") categories kept for nesting and attribution.
CPU_OP = "cpu_op"
USER_ANNOTATION = "user_annotation"
PYTHON_FUNCTION = "python_function"
CUDA_RUNTIME = "cuda_runtime"
CUDA_DRIVER = "cuda_driver"
HOST_CATEGORIES = frozenset({CPU_OP, USER_ANNOTATION, PYTHON_FUNCTION, CUDA_RUNTIME, CUDA_DRIVER})
CALL_CATEGORIES = frozenset({CUDA_RUNTIME, CUDA_DRIVER})  # host calls that launch GPU work
# Device-side categories that occupy the GPU.
KERNEL = "kernel"
GPU_MEMCPY = "gpu_memcpy"
GPU_MEMSET = "gpu_memset"
GPU_CATEGORIES = frozenset({KERNEL, GPU_MEMCPY, GPU_MEMSET})
# Every spelling of these categories torch.profiler has written, lowercased: PyTorch
# 1.8-1.9 wrote "Operator", "Runtime", "Kernel", "Memcpy", "Memset" and "Python" (as in
# torch-tb-profiler's own samples), later Kineto the snake_case names; other backends
# write their own runtime/driver names. Matched without regard to case, as tb-profiler does.
CATEGORY_ALIASES = {
    "cpu_op": CPU_OP,
    "operator": CPU_OP,
    "user_annotation": USER_ANNOTATION,
    "python_function": PYTHON_FUNCTION,
    "python": PYTHON_FUNCTION,
    "cuda_runtime": CUDA_RUNTIME,
    "runtime": CUDA_RUNTIME,
    "hip_runtime": CUDA_RUNTIME,
    "xpu_runtime": CUDA_RUNTIME,
    "privateuse1_runtime": CUDA_RUNTIME,
    "cuda_driver": CUDA_DRIVER,
    "driver": CUDA_DRIVER,
    "privateuse1_driver": CUDA_DRIVER,
    "kernel": KERNEL,
    "gpu_memcpy": GPU_MEMCPY,
    "memcpy": GPU_MEMCPY,
    "gpu_memset": GPU_MEMSET,
    "memset": GPU_MEMSET,
}
# Spelling -> this module's own string object. A JSON decoder makes a new string per
# event; the records share one per category and one per distinct name instead: 20 MB
# less on a 200k-event trace, and the analysis compares and hashes a few strings that
# stay in cache rather than 200k scattered ones (a fifth less analysis time). The exact
# spellings seen in real traces are looked up directly; any other case is learnt per
# trace (see learn_category).
_SPELLINGS = [*CATEGORY_ALIASES, "Operator", "Runtime", "Kernel", "Memcpy", "Memset", "Python"]
HOST_CATEGORY = {
    c: CATEGORY_ALIASES[c.lower()]
    for c in _SPELLINGS
    if CATEGORY_ALIASES[c.lower()] in HOST_CATEGORIES
}
GPU_CATEGORY = {
    c: CATEGORY_ALIASES[c.lower()]
    for c in _SPELLINGS
    if CATEGORY_ALIASES[c.lower()] in GPU_CATEGORIES
}
# Recognised but not timed: GPU-side copies of annotations, CUDA sync records, profiler
# spans, flows, profiler overhead (lowercased, like CATEGORY_ALIASES).
IGNORED_CATEGORIES = frozenset(
    {
        "gpu_user_annotation",
        "cuda_sync",
        "trace",
        "ac2g",
        "fwdbwd",
        "overhead",
        "cpu_instant_event",
    }
)

STEP_PREFIX = "ProfilerStep#"
# Timestamps of ~1.7e15 µs are only exact to 0.25 µs in a double: allow that much when
# deciding whether one event lies inside another.
NEST_SLACK_US = 0.5


# Records are msgspec structs: built in C, 3x faster to construct than a slots dataclass
# (a 200k-event trace makes 150k records: 0.05 s), and not tracked by the cyclic GC (they
# hold only strings and numbers).


class HostEvent(msgspec.Struct, gc=False):
    cat: str
    name: str
    thread: int  # index into TraceEvents.threads
    start: float
    end: float
    correlation: int = -1
    parent: int = -1  # innermost host event of the same thread that encloses this one


class GpuEvent(msgspec.Struct, gc=False):
    cat: str  # kernel, gpu_memcpy or gpu_memset
    name: str
    device: int
    stream: int
    start: float
    end: float
    correlation: int = -1
    bytes: int = 0
    collective: bool = False
    launch: int = -1  # index of the host runtime/driver call that launched it
    # Kernels only, as Kineto writes them (None when absent): (blocks per SM, warps per SM,
    # est. achieved occupancy %), each None where missing. One field, so ops without
    # them cost one pointer.
    sm: Any = None


class OpShapes(msgspec.Struct, gc=False):
    """What a cpu_op's args say of its work (with_flops, record_shapes): kept only for ops
    that carry FLOPs or whose FLOPs follow from their shapes (FLOP_SHAPE_OPS)."""

    flops: int | None  # args.flops; None when absent
    dims: list[Any]  # "Input Dims": a list per input ([] for a scalar or non-tensor)
    types: list[Any]  # "Input type": "float", "c10::Half", "Scalar", ...


# Ops whose FLOPs the roofline can work out from their input shapes where the trace has
# no "flops" arg (torch's own formulas: 2 FLOPs per multiply-add).
FLOP_SHAPE_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"})


@dataclass(slots=True)
class Step:
    name: str
    number: int
    start: float
    end: float


@dataclass(slots=True)
class MemorySample:
    ts: float
    device: str  # "cpu", "cuda:0"
    allocated: int
    reserved: int


# An ac2g flow event: (ph "s" or "f", pid, tid, ts relative to the time base, flow id).
Flow = tuple[str, Any, Any, float, Any]


@dataclass
class DeviceInfo:
    id: int
    name: str = ""
    total_memory: int | None = None
    major: int | None = None
    minor: int | None = None


@dataclass
class TraceEvents:
    source: str
    event_count: int = 0
    time_base_us: float = 0.0  # subtracted from every timestamp (see time_base)
    host: list[HostEvent] = field(default_factory=list)
    host_order: list[int] = field(default_factory=list)  # parents before children
    # category -> indices, in arrays of 8-byte ints (a list holds a 36-byte int object per
    # event: 14 MB more for 500k host events)
    host_by_cat: dict[str, array[int]] = field(default_factory=dict)
    threads: list[tuple[Any, Any]] = field(default_factory=list)  # (pid, tid)
    gpu: list[GpuEvent] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    gpu_sync_events: Counter[str] = field(default_factory=Counter)  # cuda_sync by kind
    devices: list[DeviceInfo] = field(default_factory=list)
    op_shapes: dict[int, OpShapes] = field(default_factory=dict)  # host index -> shapes
    rank: int | None = None
    world_size: int | None = None
    backend: str = ""
    has_distributed_info: bool = False
    other_categories: Counter[str] = field(default_factory=Counter)
    linked_by_correlation: int = 0
    linked_by_flow: int = 0
    # Timed events skipped for a NaN/infinite/non-numeric timestamp or a negative duration.
    bad_events: int = 0
    bad_event_names: Counter[str] = field(default_factory=Counter)

    def of(self, *cats: str) -> Sequence[int]:
        """Indices of the host events of these categories (each list in trace order)."""
        if len(cats) == 1:
            return self.host_by_cat.get(cats[0], ())
        return [i for c in cats for i in self.host_by_cat.get(c, [])]

    def calls(self) -> Sequence[int]:
        """Indices of the CUDA runtime and driver calls."""
        return self.of(CUDA_RUNTIME, CUDA_DRIVER)


def is_collective(name: str, has_collective_args: bool) -> bool:
    """NCCL/RCCL kernels (or ones CUPTI tagged with a collective name)."""
    if has_collective_args:
        return True
    head = name[:120].lower()  # kernel names can run to kilobytes of template arguments
    return "nccl" in head or "rccl" in head


def time_base(events: Iterator[Any]) -> tuple[float, list[Any]]:
    """A whole microsecond near the first timestamp, subtracted from all of them, and the
    events read to find it.

    Kineto writes epoch-based timestamps (~1.7e15 µs) that a double holds only to 0.25 µs,
    while durations carry nanoseconds: start + duration near 1e15 would round every end.
    Relative to a nearby base the ends keep the durations' precision.
    """
    seen = []
    for e in events:
        seen.append(e)
        ts = e.ts
        if isinstance(ts, (int, float)) and math.isfinite(ts):
            return float(math.floor(ts)), seen
    return 0.0, seen


def normalise(
    events: Iterable[Any],
    meta: dict[str, Any],
    source: str,
    count: int | None = None,
    flow_source: Callable[[], Iterator[Any]] | None = None,
    release: Callable[[], None] | None = None,
) -> TraceEvents:
    """Compact records from the decoded events (``decode.Event`` structs) and top-level
    metadata of one trace: the one pass over every event.

    ``events`` is a list, or an iterator (decoded batch by batch); ``count`` is the number
    of events in the file (by default the list's length), skipped ones included. With ``flow_source`` the ac2g flows are not kept while reading: it decodes them again
    if they are needed (see events.finish, which also calls ``release``).
    """
    if isinstance(events, list):
        count = len(events) if count is None else count
        base, _ = time_base(iter(events))
    else:
        base, first = time_base(events)
        events = chain(first, events)
    out = TraceEvents(source=source, event_count=count or 0)
    out.time_base_us = base
    read_meta(out, meta)
    thread_ids: dict[tuple[Any, Any], int] = {}
    host = out.host
    gpu = out.gpu
    steps = out.steps
    other = out.other_categories
    flow_events: list[Any] = []  # turned into Flows only if some op lacks an id
    collective_names: dict[str, bool] = {}
    # Once per event (200k+): module constants as locals, no helper calls on common paths.
    host_categories = dict(HOST_CATEGORY)  # per trace: learn_category adds spellings
    gpu_categories = dict(GPU_CATEGORY)
    others = dict(OTHER_CATEGORY)
    strings: dict[str, str] = {}  # each distinct name once (see HOST_CATEGORY)
    call_categories = CALL_CATEGORIES
    python_function = PYTHON_FUNCTION
    step_prefix = STEP_PREFIX
    by_cat = out.host_by_cat = {c: array("q") for c in HOST_CATEGORIES}
    for e in events:
        ph = e.ph
        if ph == "X":
            cat = e.cat
            if type(cat) is not str:
                cat = "" if cat is None else str(cat)
            try:
                ts = e.ts - base
                end = ts + e.dur
            except TypeError:
                if e.ts is not None:  # no timestamp at all: not a timed event
                    bad_event(out, e.name)
                continue
            # False for NaN in either, a negative duration, or an infinite timestamp.
            if not (ts <= end < MAX_RELATIVE_US and ts > -MAX_RELATIVE_US):
                bad_event(out, e.name)
                continue
            host_cat = host_categories.get(cat)
            if host_cat is None and cat not in gpu_categories and cat not in others:
                learn_category(cat, host_categories, gpu_categories, others)
                host_cat = host_categories.get(cat)
            if host_cat is not None:
                cat = host_cat
                key = (e.pid, e.tid)
                thread = thread_ids.get(key)
                if thread is None:
                    thread = thread_ids[key] = len(thread_ids)
                name = e.name
                if type(name) is not str:
                    name = str(name or "")
                name = strings.setdefault(name, name)
                if cat in call_categories:
                    by_cat[cat].append(len(host))
                    corr = e.args.correlation if e.args is not None else -1
                    host.append(
                        HostEvent(cat, name, thread, ts, end, corr if type(corr) is int else -1)
                    )
                else:
                    if cat != python_function and name.startswith(step_prefix):
                        steps.append(Step(name, _step_number(name), ts, end))
                        # PyTorch 1.8-1.9 wrote steps as ops: they are annotations.
                        cat = USER_ANNOTATION
                    args = e.args
                    if cat == CPU_OP and args is not None:
                        shapes = op_shapes(name, args.flops, args.input_dims, args.input_type)
                        if shapes is not None:
                            out.op_shapes[len(host)] = shapes
                    by_cat[cat].append(len(host))
                    host.append(HostEvent(cat, name, thread, ts, end))
            elif cat in gpu_categories:
                cat = gpu_categories[cat]
                args = e.args
                name = e.name
                if type(name) is not str:
                    name = str(name or "")
                name = strings.setdefault(name, name)
                if args is None:
                    device, stream, corr, nbytes, tagged = e.pid, e.tid, None, 0, False
                else:
                    device = args.device if args.device is not None else e.pid
                    stream = args.stream if args.stream is not None else e.tid
                    corr, nbytes, tagged = args.correlation, args.bytes, args.collective is not None
                g = gpu_event(
                    cat, name, device, stream, ts, end, corr, nbytes, tagged, collective_names
                )
                if cat == KERNEL and args is not None:
                    g.sm = sm_fields(args.blocks_per_sm, args.warps_per_sm, args.occupancy)
                gpu.append(g)
            else:
                kind = others[cat]
                if kind == "cuda_sync":
                    out.gpu_sync_events[str(e.name)] += 1
                elif kind is None:
                    other[cat or "(no category)"] += 1
        elif ph == "s" or ph == "f":
            if e.cat == "ac2g" and flow_source is None:
                flow_events.append(e)
        elif ph == "i" and e.name == "[memory]" and e.args is not None:
            a = e.args
            sample = memory_sample(e.ts, base, a.allocated, a.reserved, a.device_type, a.device_id)
            if sample is not None:
                out.memory.append(sample)

    def flows() -> list[Flow]:
        found = flow_events if flow_source is None else flow_source()
        return [
            (e.ph, e.pid, e.tid, e.ts - base, e.id) for e in found if isinstance(e.ts, (int, float))
        ]

    finish(out, flows, thread_ids, release)
    return out


# Timestamps relative to the time base beyond this (30 years in µs) are not real times.
MAX_RELATIVE_US = 1e15
# Categories that are neither host nor GPU ops -> their lowercase name when recognised
# (IGNORED_CATEGORIES), None when unknown (counted in other_categories).
OTHER_CATEGORY: dict[str, str | None] = {
    **{c: c for c in IGNORED_CATEGORIES},
    "Trace": "trace",
    "Overhead": "overhead",
}


def learn_category(
    cat: str,
    host: dict[str, str],
    gpu: dict[str, str],
    others: dict[str, str | None],
) -> None:
    """File a category spelling met for the first time in this trace, by its lowercase
    form, into one of the per-trace lookup dicts (so each spelling is resolved once)."""
    key = cat.strip().lower()
    canonical = CATEGORY_ALIASES.get(key)
    if canonical in HOST_CATEGORIES:
        host[cat] = canonical
    elif canonical in GPU_CATEGORIES:
        gpu[cat] = canonical
    else:
        others[cat] = key if key in IGNORED_CATEGORIES else None


def op_shapes(name: str, flops: Any, dims: Any, types: Any) -> OpShapes | None:
    """A cpu_op's FLOPs and input shapes, when it has FLOPs or they follow from its shapes."""
    count = flops if type(flops) is int and flops >= 0 else None
    if type(flops) is float and math.isfinite(flops) and flops >= 0:
        count = int(flops)
    if count is None and name not in FLOP_SHAPE_OPS:
        return None
    return OpShapes(
        count,
        dims if isinstance(dims, list) else [],
        types if isinstance(types, list) else [],
    )


def bad_event(out: TraceEvents, name: Any) -> None:
    out.bad_events += 1
    out.bad_event_names[str(name)[:80] if name is not None else "(no name)"] += 1


def sm_fields(blocks: Any, warps: Any, occupancy: Any) -> tuple[Any, Any, Any] | None:
    """A kernel's (blocks per SM, warps per SM, est. achieved occupancy %), numbers or None."""
    if blocks is None and warps is None and occupancy is None:
        return None
    return (_number(blocks), _number(warps), _number(occupancy))


def _number(value: Any) -> float | None:
    if type(value) in (int, float) and math.isfinite(value):
        return value
    return None


def finish(
    out: TraceEvents,
    flows: Callable[[], list[Flow]],
    thread_ids: dict[tuple[Any, Any], int],
    release: Callable[[], None] | None = None,
) -> None:
    """After the pass over the events: link GPU ops to their launches, nest host events.

    ``flows`` makes the ac2g flows on demand: a third of a trace's events, only read when
    some GPU op has no correlation id (rare), so none are built per event up front.
    ``release``, called once the flows can no longer be needed, lets the caller drop the
    trace's text before the nesting allocates its own lists.
    """
    out.threads = list(thread_ids)
    out.steps.sort(key=lambda s: s.start)
    _link_launches(out, flows, thread_ids)
    if release is not None:
        release()
    out.host_order = link_parents(out.host)


def gpu_event(
    cat: str,
    name: str,
    device: Any,
    stream: Any,
    ts: float,
    end: float,
    corr: Any,
    nbytes: Any,
    tagged_collective: bool,
    collective_names: dict[str, bool],
) -> GpuEvent:
    """One GPU record; kernel names are classified once per name."""
    collective = False
    if cat == KERNEL:
        if tagged_collective:
            collective = True
        else:
            collective = collective_names.get(name)  # type: ignore[assignment]
            if collective is None:
                collective = collective_names[name] = is_collective(name, False)
    return GpuEvent(
        cat,
        name,
        device if type(device) is int else _int(device),
        stream if type(stream) is int else _stream(stream),
        ts,
        end,
        corr if type(corr) is int else _int(corr),
        nbytes if type(nbytes) is int else _int(nbytes, 0),
        collective,
    )


def _int(value: Any, default: int = -1) -> int:
    if isinstance(value, int):
        return value
    if value is None:  # the common miss (kernels have no "bytes"): no exception to raise
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _stream(value: Any) -> int:
    """A stream id: an int, or the number in a thread name such as "stream 7"; -1 when
    there is none (all ops without a stream are then one stream)."""
    if isinstance(value, str):
        digits = value.rsplit(" ", 1)[-1]
        if digits.isdigit():
            return int(digits)
    return _int(value)


def _step_number(name: str) -> int:
    return _int(name[len(STEP_PREFIX) :].split()[0] if len(name) > len(STEP_PREFIX) else "", -1)


def read_meta(out: TraceEvents, meta: dict[str, Any]) -> None:
    """Rank, world size and backend (distributedInfo); devices (deviceProperties)."""
    dist = meta.get("distributedInfo")
    if isinstance(dist, dict):
        out.has_distributed_info = True
        rank = dist.get("rank")
        out.rank = rank if isinstance(rank, int) else None
        world = dist.get("world_size")
        out.world_size = world if isinstance(world, int) else None
        out.backend = str(dist.get("backend", "") or "")
    props = meta.get("deviceProperties")
    if isinstance(props, list):
        for p in props:
            if isinstance(p, dict):
                out.devices.append(
                    DeviceInfo(
                        id=_int(p.get("id"), len(out.devices)),
                        name=str(p.get("name", "")),
                        total_memory=_int(p.get("totalGlobalMem"), 0) or None,
                        major=p.get("computeMajor")
                        if isinstance(p.get("computeMajor"), int)
                        else None,
                        minor=p.get("computeMinor")
                        if isinstance(p.get("computeMinor"), int)
                        else None,
                    )
                )


def memory_sample(
    ts: Any, base: float, allocated: Any, reserved: Any, dev_type: Any, dev_id: Any
) -> MemorySample | None:
    """A "[memory]" instant event's totals (profile_memory=True), or None if unusable."""
    if not isinstance(allocated, (int, float)) or not isinstance(ts, (int, float)):
        return None
    # c10::DeviceType: 0 is CPU, 1 is CUDA.
    if dev_type == 0:
        device = "cpu"
    elif dev_type == 1:
        device = f"cuda:{dev_id}"
    else:
        device = f"device-type-{dev_type}:{dev_id}"
    return MemorySample(
        ts - base,
        device,
        int(allocated),
        int(reserved) if isinstance(reserved, (int, float)) else 0,
    )


def link_parents(host: list[HostEvent]) -> list[int]:
    """Set each host event's ``parent`` (innermost enclosing event on its thread).

    Returns the indices in an order where every parent comes before its children, for
    one-pass queries over ancestors (e.g. the module path of every op): thread by thread
    (in order of first appearance), by start, the longer event first at an equal start.
    """
    starts = [h.start for h in host]
    ends = [h.end for h in host]
    threads = [h.thread for h in host]
    order = nesting_order(starts, ends, threads)
    # The order runs thread by thread (ids 0, 1, ..): find where each thread's part begins.
    by_thread = list(map(threads.__getitem__, order))
    bounds = [bisect_left(by_thread, t) for t in range(max(threads, default=-1) + 2)]
    for t in range(len(bounds) - 1):
        _nest(host, order[bounds[t] : bounds[t + 1]], starts, ends)
    return order


def _nest(host: list[HostEvent], order: list[int], starts: list[float], ends: list[float]) -> None:
    """link_parents for one thread's events, in nesting order: a stack of open events."""
    stack: list[int] = []  # enclosing events, innermost last
    stack_ends: list[float] = []  # their ends
    for i in order:
        start = starts[i]
        while stack_ends and stack_ends[-1] <= start:
            stack_ends.pop()
            stack.pop()
        # An event that only partly overlaps the top (annotations can) is not its child.
        end = ends[i] - NEST_SLACK_US
        j = len(stack_ends) - 1
        while j >= 0 and stack_ends[j] < end:
            j -= 1
        host[i].parent = stack[j] if j >= 0 else -1
        stack.append(i)
        stack_ends.append(ends[i])


def nesting_order(starts: list[float], ends: list[float], threads: list[int]) -> list[int]:
    """Indices sorted by (thread, start, -end), ties in trace order: parents first.

    C-level stable sorts on a list's ``__getitem__``. Events come nearly in start order, so
    sorting by start is close to linear; the longer-first rule is applied to the rare
    equal starts only (see intervals.sort_ties).
    """
    order = sorted(range(len(starts)), key=starts.__getitem__)
    keys: list[Any]  # what must be equal for a tie: the start, on the same thread
    if threads and max(threads) > 0:
        # Thread ids number threads by first appearance, so this keeps that order.
        order.sort(key=threads.__getitem__)
        keys = list(
            zip(map(threads.__getitem__, order), map(starts.__getitem__, order), strict=True)
        )
    else:
        keys = list(map(starts.__getitem__, order))

    def longer_first(i: int) -> float:
        return -ends[i]

    sort_ties(order, keys, longer_first)
    return order


def _link_launches(
    out: TraceEvents, flows: Callable[[], list[Flow]], thread_ids: dict[tuple[Any, Any], int]
) -> None:
    """GpuEvent.launch: the runtime call with the same correlation id, else via ac2g flows."""
    by_corr: dict[int, int] = {}
    for i in out.calls():
        corr = out.host[i].correlation
        if corr >= 0:
            by_corr[corr] = i
    missing: list[GpuEvent] = []
    for g in out.gpu:
        i = by_corr.get(g.correlation, -1) if g.correlation >= 0 else -1
        if i >= 0:
            g.launch = i
            out.linked_by_correlation += 1
        else:
            missing.append(g)
    if missing:
        found = flows()
        if found:
            _link_by_flows(out, missing, found, thread_ids)


def _link_by_flows(
    out: TraceEvents,
    missing: list[GpuEvent],
    flows: list[Flow],
    thread_ids: dict[tuple[Any, Any], int],
) -> None:
    """A flow's "s" event sits on the launch call (same thread and ts), its "f" on the op."""
    starts: dict[Any, tuple[Any, Any, float]] = {}
    ends: dict[tuple[Any, Any, float], Any] = {}
    for ph, pid, tid, ts, flow_id in flows:
        if ph == "s":
            starts[flow_id] = (pid, tid, ts)
        else:
            ends[(pid, tid, ts)] = flow_id
    by_place: dict[tuple[int, float], int] = {}
    for i in out.calls():
        h = out.host[i]
        by_place[(h.thread, h.start)] = i
    for g in missing:
        start = starts.get(ends.get((g.device, g.stream, g.start)))
        if start is None:
            continue
        thread = thread_ids.get((start[0], start[1]))
        i = by_place.get((thread, start[2]), -1) if thread is not None else -1
        if i >= 0:
            g.launch = i
            out.linked_by_flow += 1
