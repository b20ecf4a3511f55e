"""One training step's memory over time, from torch.profiler's memory events.

The step runs on a deep copy of the model (train mode, AdamW, its state created
beforehand by one optimizer step on zero gradients, as in any step after the first) under
``profile(profile_memory=True, record_shapes=True)``, with the phases and every module's
forward marked by profiler ranges. Every allocation and free on the model's device is an
event of that profile. perfreport gives each allocation one of the categories of torch's
memory profiler from what it knows of the step (``categorise``):

- parameters, optimizer state and inputs exist before the step: their storages are read
  from the model, the optimizer and the inputs;
- gradients are the storages that hold ``p.grad`` as backward ends;
- a temporary is freed inside the op that allocated it (torch's definition), or made by the
  optimizer step and gone by its end (the foreach implementation's intermediates);
- what the forward makes and keeps past its op is an activation; what backward makes and
  is not a gradient is autograd detail;
- what is allocated outside the three phases is "unknown".

torch's own ``MemoryProfile`` derives these categories from a data-flow graph of the whole
profile and the Python tracer (``with_stack``): on GPT-2 small that analysis took 4.4 s,
five times the step it analyses. Tests run both on the same recorded step of the sample
models and check that they agree.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch._C._profiler import RecordScope, _EventType
from torch.profiler import ProfilerActivity, profile

from reporter.model_info import tensor_key
from reporter.profiling.scopes import STEP_PREFIX, module_scopes, parse_scope
from reporter.profiling.train_step import PHASE_RANGES, train_step
from reporter.report.memory_timeline import LiveTensor, MemoryTimeline, Phase, TimelineCheck
from reporter.tensors import tensors_in
from reporter.units import dtype_name, shape_text

# ctx.cache key under which the profile stage leaves its last training step for the timeline.
TRAINING_STEP = "memory timeline: recorded training step"
CATEGORIES = (
    "parameter",
    "optimizer_state",
    "gradient",
    "input",
    "activation",
    "autograd_detail",
    "temporary",
    "unknown",
)
MAX_SAMPLES = 400
LARGEST = 10


@dataclass(frozen=True)
class Known:
    """A storage that exists before the step, and what it is."""

    category: str
    nbytes: int
    name: str
    shape: str
    dtype: str
    device: torch.device


@dataclass
class Allocation:
    """One tensor storage's life on the device during the step."""

    ptr: int
    nbytes: int
    start_ns: int  # -1: alive before the step
    end_ns: int | None  # None: still alive after it
    category: str = "unknown"
    op: str = ""  # the op that allocated it
    module: str = ""  # the innermost module whose forward was running
    shape: str = ""
    dtype: str = ""


@dataclass
class StepRecord:
    """What one profiled training step left: the profiler's events and what perfreport
    knows of the storages."""

    events: list[Any]  # torch's profiler events of the step, depth first
    known: dict[int, Known]  # storage address -> a storage alive before the step
    gradients: set[int]  # storage addresses of p.grad as the step ends
    optimizer: str
    source: str  # which step, for the method: "The profile stage's last", "One"
    seconds: float = 0.0  # what making this record added to the run


def step_record(
    prof: profile, model: torch.nn.Module, optimizer: Any, inputs: Any, source: str
) -> StepRecord:
    """The last step a profile recorded (its ProfilerStep range, on every thread; the whole
    profile when there is none), read right after it, while the gradients it made are the
    parameters' ``.grad``."""
    started = time.perf_counter()
    events = list(_depth_first(prof.profiler.kineto_results.experimental_event_tree()))
    steps = [e for e in events if e.name.startswith(STEP_PREFIX)]
    if steps:
        last = max(steps, key=lambda e: e.start_time_ns)
        start, end = last.start_time_ns, last.start_time_ns + last.duration_time_ns
        events = [e for e in events if start <= e.start_time_ns <= end]
    gradients = {_storage(p.grad) for p in model.parameters() if p.grad is not None}
    known = known_storages(model, optimizer, inputs)
    seconds = time.perf_counter() - started
    return StepRecord(events, known, gradients, type(optimizer).__name__, source, seconds)


def record_step(subject: Any) -> StepRecord:
    """Profile one training step of its own, after one unrecorded step that creates the
    optimizer's state (as in any step after the first)."""
    started = time.perf_counter()
    step = train_step(subject)
    if step is None:
        raise ValueError("the model's output has no floating tensor to backpropagate")
    step.run()
    activities = [ProfilerActivity.CPU]
    if subject.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with (
        module_scopes(step.model),
        profile(activities=activities, record_shapes=True, profile_memory=True) as prof,
    ):
        step.run()
    record = step_record(prof, step.model, step.optimizer, (subject.args, subject.kwargs), "One")
    record.seconds = time.perf_counter() - started
    return record


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _depth_first(roots: list[Any]) -> Iterator[Any]:
    stack = list(reversed(roots))
    while stack:
        e = stack.pop()
        yield e
        stack.extend(reversed(e.children))


def known_storages(model: torch.nn.Module, optimizer: Any, inputs: Any) -> dict[int, Known]:
    """Storage address -> the parameter, optimizer state or input tensor held there. Bytes
    are the tensors' own (a storage shared by tied or viewed tensors counts each distinct
    tensor once: ``tensor_key``, as the memory stage counts parameters)."""
    known: dict[int, Known] = {}
    seen: set[tuple[Any, ...]] = set()

    def add(t: torch.Tensor, category: str, name: str) -> None:
        if t.device.type == "meta" or tensor_key(t) in seen:
            return
        seen.add(tensor_key(t))
        ptr, nbytes = _storage(t), t.numel() * t.element_size()
        old = known.get(ptr)
        if old is not None:  # a second tensor in the same storage: its bytes join the first's
            known[ptr] = Known(
                old.category, old.nbytes + nbytes, old.name, old.shape, old.dtype, old.device
            )
            return
        known[ptr] = Known(
            category, nbytes, name, shape_text(t.shape), dtype_name(t.dtype), t.device
        )

    for name, p in model.named_parameters():
        add(p, "parameter", name)
    # Buffers are model state no gradient updates: torch's memory profiler counts them,
    # like the data, as inputs.
    for name, b in model.named_buffers():
        add(b, "input", f"buffer {name}")
    for name, p in model.named_parameters():
        for key, value in optimizer.state.get(p, {}).items():
            if isinstance(value, torch.Tensor):
                add(value, "optimizer_state", f"{key} of {name}")
    for i, t in enumerate(tensors_in(inputs)):
        add(t, "input", f"input {i}")
    return known


# ---------------------------------------------------------------- categories
def categorise(
    record: StepRecord, device: torch.device, phases: list[tuple[str, int, int]]
) -> list[Allocation]:
    """Every storage alive on ``device`` during the step, with its category, the op that
    made it and the module whose forward was running."""
    memory = sorted(
        (
            e
            for e in record.events
            if e.typed[0] == _EventType.Allocation
            and e.typed[1].alloc_size != 0
            and e.typed[1].device == device
        ),
        key=lambda e: e.start_time_ns,
    )
    modules = _modules_at(record.events, [e.start_time_ns for e in memory])
    allocations = [
        Allocation(ptr, k.nbytes, -1, None, k.category, k.name, "", k.shape, k.dtype)
        for ptr, k in record.known.items()
        if k.device == device
    ]
    live: dict[int, tuple[Allocation, int]] = {a.ptr: (a, -1) for a in allocations}
    for e, module in zip(memory, modules, strict=True):
        fields, node = e.typed[1], _node_of(e)
        node_id = node.id if node is not None else -1
        if fields.alloc_size > 0:
            a = Allocation(fields.ptr, fields.alloc_size, e.start_time_ns, None)
            a.op, a.module = (node.name if node is not None else ""), module
            allocations.append(a)
            live[fields.ptr] = (a, node_id)
            continue
        held = live.pop(fields.ptr, None)
        if held is None:
            continue  # never seen allocated: not counted when it goes either
        a, made_by = held
        a.end_ns = e.start_time_ns
        if a.start_ns >= 0 and node is not None and node_id == made_by:
            a.category = "temporary"  # freed inside the op that allocated it
    backward = next(((s, end) for name, s, end in phases if name == "backward"), None)
    for a in allocations:
        if a.start_ns >= 0 and a.category == "unknown":
            a.category = _category(a, phases, record.gradients, backward)
    return allocations


def _category(
    a: Allocation,
    phases: list[tuple[str, int, int]],
    gradients: set[int],
    backward: tuple[int, int] | None,
) -> str:
    """The category of a storage allocated during the step and not freed by its own op."""
    if (
        backward is not None
        and a.ptr in gradients
        and a.start_ns <= backward[1]
        and (a.end_ns is None or a.end_ns > backward[1])
    ):
        return "gradient"  # holds p.grad as backward ends
    phase = next((name for name, start, end in phases if start <= a.start_ns <= end), "")
    if phase == "optimizer":
        # The optimizer's state exists before the step; what its step makes and drops is
        # the foreach implementation's per-step intermediates.
        return "temporary" if a.end_ns is not None else "optimizer_state"
    return {"forward": "activation", "backward": "autograd_detail"}.get(phase, "unknown")


def _node_of(e: Any) -> Any:
    """The top-level op an allocation or free happens in, as torch's memory profiler
    draws its data-flow nodes: the outermost operator (``aten::linear``, not the
    ``aten::addmm`` inside it) or backward function (``AddmmBackward0``), below any phase,
    module or other ``record_function`` range."""
    node = None
    op = e.parent
    while op is not None:
        if op.typed[0] == _EventType.TorchOp and _is_node(op):
            node = op
        op = op.parent
    return node


def _is_node(op: Any) -> bool:
    """aten::add, mylib::op, AddBackward0; not autograd's wrapper around a backward
    function nor a user range ("perfreport.forward", "nn.Module: fc1 (Linear)",
    "Optimizer.step#AdamW.step")."""
    if op.typed[1].scope == RecordScope.BACKWARD_FUNCTION:
        return True
    name = op.name
    return "::" in name and not name.startswith("autograd::engine::") and parse_scope(name) is None


def _modules_at(events: list[Any], times: list[int]) -> list[str]:
    """The innermost module scope open at each of ``times`` (sorted). By time, not by tree:
    with the Python tracer on, the profiler parents ops under Python frames, not under the
    scopes' ranges."""
    marks: list[tuple[int, int, str]] = []  # (time, 0 close / 1 open, path)
    for e in events:
        scope = parse_scope(e.name) if e.typed[0] == _EventType.TorchOp else None
        if scope is not None:
            marks.append((e.start_time_ns, 1, scope[0] or "(model)"))
            marks.append((e.start_time_ns + e.duration_time_ns, 0, ""))
    marks.sort(key=lambda m: (m[0], m[1]))
    out, stack, i = [], [], 0
    for t in times:
        # Ranges that open at t hold the allocation; ranges that close at t do not.
        while i < len(marks) and (marks[i][0] < t or (marks[i][0] == t and marks[i][1] == 1)):
            if marks[i][1] == 1:
                stack.append(marks[i][2])
            elif stack:
                stack.pop()
            i += 1
        out.append(stack[-1] if stack else "")
    return out


def phases_of(events: list[Any]) -> list[tuple[str, int, int]]:
    """The phase ranges of the step: (name, start ns, end ns), in order."""
    names = {r: phase for phase, r in PHASE_RANGES.items()}
    found = [
        (names[e.name], e.start_time_ns, e.start_time_ns + e.duration_time_ns)
        for e in events
        if e.name in names
    ]
    return sorted(found, key=lambda p: p[1])


# ---------------------------------------------------------------- the timeline
def build_timeline(
    allocations: list[Allocation],
    phases: list[tuple[str, int, int]],
    device: torch.device,
    events: list[Any] = (),
) -> MemoryTimeline:
    """Category totals over time, the peak, and what is alive at the peak (the largest
    named with their shapes where ``events`` show them)."""
    start_ns = min((p[1] for p in phases), default=0)
    # Each storage opens and closes once: (time, 1 open / 0 close, index). Frees before
    # allocations at the same instant, so a reused address is never counted twice.
    changes = [(a.start_ns, 1, i) for i, a in enumerate(allocations)]
    changes += [(a.end_ns, 0, i) for i, a in enumerate(allocations) if a.end_ns is not None]
    changes.sort()
    totals = dict.fromkeys(CATEGORIES, 0)
    max_by = dict.fromkeys(CATEGORIES, 0)
    points: list[tuple[float, list[int]]] = []
    peak, peak_at = -1, -1
    held_peak, held_at = 0, -1
    at_phase_end: dict[str, dict[str, int]] = {}
    forward_end = -1  # the last change of the forward: every saved activation alive
    for position, (t, opens, i) in enumerate(changes):
        for name, _, end in phases:
            if name not in at_phase_end and t > end:
                at_phase_end[name] = {c: v for c, v in totals.items() if v}
        if phases and phases[0][0] == "forward" and t <= phases[0][2]:
            forward_end = position
        a = allocations[i]
        totals[a.category] += a.nbytes if opens else -a.nbytes
        values = [totals[c] for c in CATEGORIES]
        points.append((max(t - start_ns, 0) / 1000, values))
        for c in CATEGORIES:
            max_by[c] = max(max_by[c], totals[c])
        if sum(values) > peak:
            peak, peak_at = sum(values), position
        held = totals["activation"] + totals["autograd_detail"]
        if held > held_peak:
            held_peak, held_at = held, position
    for name, _, _ in phases:
        at_phase_end.setdefault(name, {c: v for c, v in totals.items() if v})
    at_peak = _alive_after(changes, allocations, peak_at)
    peak_time = points[peak_at][0] if peak_at >= 0 else 0.0
    phase_us = [Phase(n, (s - start_ns) / 1000, (e - start_ns) / 1000) for n, s, e in phases]
    by_category: Counter[str] = Counter()
    for a in at_peak:
        by_category[a.category] += a.nbytes
    # Activations by module where forward ends (what checkpointing a module would free);
    # at the activation peak itself backward's own tensors, made outside any module, weigh in.
    held_moment = forward_end if forward_end >= 0 else held_at
    largest = sorted(at_peak, key=lambda a: -a.nbytes)[:LARGEST]
    name_shapes(largest, events)
    times, samples = downsample(points, MAX_SAMPLES)
    return MemoryTimeline(
        categories=list(CATEGORIES),
        times_us=times,
        samples=samples,
        phases=phase_us,
        peak_bytes=max(peak, 0),
        peak_time_us=peak_time,
        peak_phase=next((p.name for p in phase_us if p.start_us <= peak_time <= p.end_us), ""),
        at_peak_by_category={c: by_category[c] for c in CATEGORIES if by_category[c]},
        at_peak_by_module=dict(_activations_by_module(at_peak).most_common(20)),
        activations_by_module=dict(
            _activations_by_module(_alive_after(changes, allocations, held_moment)).most_common(20)
        ),
        activation_peak_bytes=held_peak,
        activation_peak_time_us=points[held_at][0] if held_at >= 0 else 0.0,
        largest_at_peak=[_live_tensor(a) for a in largest],
        max_by_category=max_by,
        at_phase_end=at_phase_end,
        device=str(device),
    )


def _alive_after(
    changes: list[tuple[int, int, int]], allocations: list[Allocation], position: int
) -> list[Allocation]:
    """The storages alive just after the change at ``position``."""
    alive: set[int] = set()
    for _, opens, i in changes[: position + 1]:
        if opens:
            alive.add(i)
        else:
            alive.discard(i)
    return [allocations[i] for i in sorted(alive)]


def _activations_by_module(alive: list[Allocation]) -> Counter[str]:
    """Bytes of live activations (and autograd detail) by the module that allocated them."""
    by_module: Counter[str] = Counter()
    for a in alive:
        if a.category in ("activation", "autograd_detail"):
            by_module[a.module or "(outside modules)"] += a.nbytes
    return by_module


def _live_tensor(a: Allocation) -> LiveTensor:
    return LiveTensor(a.nbytes, a.category, op=a.op, module=a.module, shape=a.shape, dtype=a.dtype)


def name_shapes(alive: list[Allocation], events: list[Any]) -> None:
    """Shape and dtype of storages alive together and made in the step, from the first op
    that reads them (record_shapes records op inputs, not outputs), where the tensor read
    fills the whole storage."""
    wanted = {a.ptr: a for a in alive if a.start_ns >= 0 and not a.shape}
    if not wanted:
        return
    for e in events:
        if e.typed[0] != _EventType.TorchOp:
            continue
        for t in e.typed[1].inputs:
            a = wanted.get(getattr(t, "storage_data_ptr", None))
            if a is None or not a.start_ns <= e.start_time_ns <= (a.end_ns or math.inf):
                continue
            if math.prod(t.sizes) * t.dtype.itemsize == a.nbytes:
                a.shape, a.dtype = shape_text(t.sizes), dtype_name(t.dtype)
                del wanted[a.ptr]


def downsample(
    points: list[tuple[float, list[int]]], limit: int
) -> tuple[list[float], list[list[int]]]:
    """At most ``limit`` points: in each time bin the one with the most bytes, so the peak
    and every spike survive."""
    if len(points) <= limit:
        return [p[0] for p in points], [p[1] for p in points]
    t0, t1 = points[0][0], points[-1][0]
    width = (t1 - t0) / limit or 1.0
    bins: dict[int, tuple[float, list[int]]] = {}
    for time_us, values in points:
        b = min(int((time_us - t0) / width), limit - 1)
        if b not in bins or sum(values) > sum(bins[b][1]):
            bins[b] = (time_us, values)
    kept = [bins[b] for b in sorted(bins)]
    return [p[0] for p in kept], [p[1] for p in kept]


# ---------------------------------------------------------------- checks
@dataclass(frozen=True)
class Counted:
    """The memory stage's own counts, which the timeline is checked against."""

    parameter_bytes: int  # unique parameters
    trainable_bytes: int  # unique parameters that require grad
    trainable_tensors: int
    activation_bytes: int  # most bytes alive during its training forward


def checks(
    timeline: MemoryTimeline, counted: Counted, *, step_counters_here: bool = True
) -> list[TimelineCheck]:
    """The timeline's figures against the memory stage's counts."""
    grads = timeline.at_phase_end.get("backward", {}).get("gradient", 0)
    # AdamW: exp_avg and exp_avg_sq per trainable parameter, and one float32 step counter
    # per parameter tensor: a 4-byte scalar kept on the CPU (unless the optimizer is
    # fused or capturable), so on the timeline of a CUDA device it is not there.
    adam = 2 * counted.trainable_bytes + (
        4 * counted.trainable_tensors if step_counters_here else 0
    )
    activations = timeline.max_by_category.get("activation", 0)
    parameters = timeline.max_by_category.get("parameter", 0)
    rows = [
        ("parameters", parameters, counted.parameter_bytes, 0.0, ""),
        ("gradients after backward", grads, counted.trainable_bytes, 0.0, ""),
        (
            "AdamW state",
            timeline.max_by_category.get("optimizer_state", 0),
            adam,
            0.0,
            "2 copies of the trainable parameters + a 4-byte step counter per tensor",
        ),
        (
            "activations (most alive at once)",
            activations,
            counted.activation_bytes,
            0.25,
            "the memory stage counts bytes alive during forward; the activation category "
            "leaves out inputs and autograd detail",
        ),
    ]
    out = []
    for what, got, expected, tolerance, note in rows:
        agrees = abs(got - expected) <= tolerance * max(expected, 1)
        if not agrees:
            diff = got - expected
            note = (note + "; " if note else "") + f"differs by {diff:+,} bytes"
        out.append(TimelineCheck(what, got, expected, agrees, note))
    return out


METHOD = (
    "{source} training step of a deep copy (train mode, AdamW, after a step that created "
    "its state) under torch.profiler with profile_memory and record_shapes; profiler "
    "ranges mark the phases and each module's forward. Every allocation and free on the model's device comes from "
    "the profile; its category is torch's memory profiler's, assigned from the storages of "
    "the parameters, buffers and inputs (inputs), optimizer state and gradients, and from "
    "the phase and op that made it (freed inside its own op: temporary). Bytes on the "
    "model's device; the chart keeps, of each of {n} time bins, its highest point, so the "
    "peak is always drawn. The timeline added {seconds:.2f} s to the run ({what})."
)
COST = {
    "One": "its own two steps, categorising and checking",
    "The profile stage's last": "keeping the profile's events, categorising and checking",
}


def timeline_for(record: StepRecord, device: torch.device, counted: Counted) -> MemoryTimeline:
    """Categorise a recorded training step's memory and check it against ``counted``."""
    started = time.perf_counter()
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    phases = phases_of(record.events)
    timeline = build_timeline(categorise(record, device, phases), phases, device, record.events)
    timeline.checks = checks(timeline, counted, step_counters_here=device.type == "cpu")
    timeline.optimizer = record.optimizer
    timeline.seconds = record.seconds + time.perf_counter() - started
    timeline.method = METHOD.format(
        source=record.source,
        n=MAX_SAMPLES,
        seconds=timeline.seconds,
        what=COST.get(record.source, "recording, categorising and checking"),
    )
    return timeline
