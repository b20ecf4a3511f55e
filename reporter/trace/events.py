"""Kineto trace events -> compact records: host events, GPU ops, steps, memory samples.

One pass over the parsed JSON keeps only what the analysis reads (a few fields per event,
not the args dicts), so the parsed JSON can be dropped right after. Then host events are
nested per thread (``parent``) and GPU ops are linked to the runtime call that launched
them: by correlation id, or by the ``ac2g`` flow events where an op has none.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Host-side ("CPU") categories kept for nesting and attribution.
CPU_OP = "cpu_op"
USER_ANNOTATION = "user_annotation"
PYTHON_FUNCTION = "python_function"
CUDA_RUNTIME = "cuda_runtime"
CUDA_DRIVER = "cuda_driver"
HOST_CATEGORIES = frozenset({CPU_OP, USER_ANNOTATION, PYTHON_FUNCTION, CUDA_RUNTIME, CUDA_DRIVER})
# Device-side categories that occupy the GPU.
KERNEL = "kernel"
GPU_MEMCPY = "gpu_memcpy"
GPU_MEMSET = "gpu_memset"
GPU_CATEGORIES = frozenset({KERNEL, GPU_MEMCPY, GPU_MEMSET})
# Recognised but not timed: GPU-side copies of annotations, CUDA sync records, profiler spans.
IGNORED_CATEGORIES = frozenset({"gpu_user_annotation", "cuda_sync", "Trace", "ac2g", "fwdbwd"})

STEP_PREFIX = "ProfilerStep#"
# Timestamps of ~1.7e15 µs are only exact to 0.25 µs in a double: allow that much when
# deciding whether one event lies inside another.
NEST_SLACK_US = 0.5


@dataclass(slots=True)
class HostEvent:
    cat: str
    name: str
    thread: int  # index into TraceEvents.threads
    start: float
    end: float
    correlation: int = -1
    parent: int = -1  # innermost host event of the same thread that encloses this one


@dataclass(slots=True)
class GpuEvent:
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
    host_by_cat: dict[str, list[int]] = field(default_factory=dict)  # category -> indices
    threads: list[tuple[Any, Any]] = field(default_factory=list)  # (pid, tid)
    gpu: list[GpuEvent] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    gpu_sync_events: Counter[str] = field(default_factory=Counter)  # cuda_sync by kind
    devices: list[DeviceInfo] = field(default_factory=list)
    rank: int | None = None
    world_size: int | None = None
    backend: str = ""
    has_distributed_info: bool = False
    other_categories: Counter[str] = field(default_factory=Counter)
    linked_by_correlation: int = 0
    linked_by_flow: int = 0

    def of(self, *cats: str) -> list[int]:
        """Indices of the host events of these categories (each list in trace order)."""
        if len(cats) == 1:
            return self.host_by_cat.get(cats[0], [])
        return [i for c in cats for i in self.host_by_cat.get(c, [])]

    def calls(self) -> list[int]:
        """Indices of the CUDA runtime and driver calls."""
        return self.of(CUDA_RUNTIME, CUDA_DRIVER)


def is_collective(name: str, has_collective_args: bool) -> bool:
    """NCCL/RCCL kernels (or ones CUPTI tagged with a collective name)."""
    if has_collective_args:
        return True
    head = name[:120].lower()  # kernel names can run to kilobytes of template arguments
    return "nccl" in head or "rccl" in head


def normalise(events: list[Any], meta: dict[str, Any], source: str) -> TraceEvents:
    """Compact records from the raw event dicts and top-level metadata of one trace."""
    out = TraceEvents(source=source, event_count=len(events))
    base = out.time_base_us = time_base(events)
    read_meta(out, meta)
    thread_ids: dict[tuple[Any, Any], int] = {}
    host = out.host
    gpu = out.gpu
    steps = out.steps
    other = out.other_categories
    flows: list[Flow] = []  # read only if some GPU op has no correlation id
    collective_names: dict[str, bool] = {}
    host_categories = HOST_CATEGORIES
    gpu_categories = GPU_CATEGORIES
    by_cat = out.host_by_cat = {c: [] for c in HOST_CATEGORIES}
    for e in events:
        # This loop runs once per event (200k+): plain dict reads, no helper calls.
        try:
            ph = e.get("ph")
        except AttributeError:
            continue  # not an object
        if ph == "X":
            cat = e.get("cat", "")
            try:
                ts = e["ts"] - base  # a float; a string raises TypeError
                end = ts + e.get("dur", 0)
            except (KeyError, TypeError):
                continue  # no usable timestamp
            if cat in host_categories:
                key = (e.get("pid"), e.get("tid"))
                thread = thread_ids.get(key)
                if thread is None:
                    thread = thread_ids[key] = len(thread_ids)
                name = e.get("name", "")
                if type(name) is not str:
                    name = str(name or "")
                by_cat[cat].append(len(host))
                if cat in (CUDA_RUNTIME, CUDA_DRIVER):
                    args = e.get("args")
                    corr = args.get("correlation", -1) if args else -1
                    host.append(
                        HostEvent(cat, name, thread, ts, end, corr if type(corr) is int else -1)
                    )
                else:
                    host.append(HostEvent(cat, name, thread, ts, end))
                    if cat != PYTHON_FUNCTION and name.startswith(STEP_PREFIX):
                        steps.append(Step(name, _step_number(name), ts, end))
            elif cat in gpu_categories:
                args = e.get("args") or {}
                name = e.get("name", "")
                if type(name) is not str:
                    name = str(name or "")
                device = args.get("device", e.get("pid"))
                stream = args.get("stream", e.get("tid"))
                corr = args.get("correlation")
                nbytes = args.get("bytes")
                gpu.append(
                    gpu_event(
                        cat,
                        name,
                        device,
                        stream,
                        ts,
                        end,
                        corr,
                        nbytes,
                        "Collective name" in args,
                        collective_names,
                    )
                )
            elif cat == "cuda_sync":
                out.gpu_sync_events[e.get("name", "")] += 1
            elif cat not in IGNORED_CATEGORIES:
                other[cat or "(no category)"] += 1
        elif ph == "s" or ph == "f":
            if e.get("cat") == "ac2g":
                ts = e.get("ts")
                if isinstance(ts, (int, float)):
                    flows.append((ph, e.get("pid"), e.get("tid"), ts - base, e.get("id")))
        elif ph == "i" and e.get("name") == "[memory]":
            args = e.get("args") or {}
            sample = memory_sample(
                e.get("ts"),
                base,
                args.get("Total Allocated"),
                args.get("Total Reserved"),
                args.get("Device Type"),
                args.get("Device Id", 0),
            )
            if sample is not None:
                out.memory.append(sample)
    finish(out, flows, thread_ids)
    return out


def finish(out: TraceEvents, flows: list[Flow], thread_ids: dict[tuple[Any, Any], int]) -> None:
    """After the pass over the events: nest host events, link GPU ops to their launches."""
    out.threads = list(thread_ids)
    out.steps.sort(key=lambda s: s.start)
    out.host_order = link_parents(out.host)
    _link_launches(out, flows, thread_ids)


def time_base(events: list[Any]) -> float:
    """A whole microsecond near the first timestamp, subtracted from all of them.

    Kineto writes epoch-based timestamps (~1.7e15 µs) that a double holds only to 0.25 µs,
    while durations carry nanoseconds: start + duration near 1e15 would round every end.
    Relative to a nearby base the ends keep the durations' precision.
    """
    for e in events:
        ts = e.get("ts") if isinstance(e, dict) else None
        if isinstance(ts, (int, float)) and math.isfinite(ts):
            return float(math.floor(ts))
    return 0.0


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
    """One GPU record from either decoder; kernel names are classified once per name."""
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
        stream if type(stream) is int else _int(stream),
        ts,
        end,
        corr if type(corr) is int else _int(corr),
        nbytes if type(nbytes) is int else _int(nbytes, 0),
        collective,
    )


def _int(value: Any, default: int = -1) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


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
    one-pass queries over ancestors (e.g. the module path of every op).
    """
    by_thread: dict[int, list[int]] = {}
    for i, h in enumerate(host):
        by_thread.setdefault(h.thread, []).append(i)
    starts = [h.start for h in host]
    ends = [h.end for h in host]
    negative_ends = [-e for e in ends]
    order: list[int] = []
    for indices in by_thread.values():
        # Parents first: earlier start, then the longer event at an equal start. Two stable
        # sorts on C-level keys are several times faster than one on a tuple-building key.
        indices.sort(key=negative_ends.__getitem__)
        indices.sort(key=starts.__getitem__)
        stack: list[int] = []  # enclosing events, innermost last
        for i in indices:
            start = starts[i]
            while stack and ends[stack[-1]] <= start:
                stack.pop()
            # An event that only partly overlaps the top (annotations can) is not its child.
            end = ends[i] - NEST_SLACK_US
            j = len(stack) - 1
            while j >= 0 and ends[stack[j]] < end:
                j -= 1
            host[i].parent = stack[j] if j >= 0 else -1
            stack.append(i)
        order.extend(indices)
    return order


def _link_launches(
    out: TraceEvents, flows: list[Flow], thread_ids: dict[tuple[Any, Any], int]
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
    if missing and flows:
        _link_by_flows(out, missing, flows, thread_ids)


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
