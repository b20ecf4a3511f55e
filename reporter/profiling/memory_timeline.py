"""One training step's memory over time, from torch.profiler's memory profiler.

The step runs on a deep copy of the model (train mode, AdamW, one unrecorded step first
so the optimizer state exists, as in any step after the first) under
``profile(profile_memory=True, record_shapes=True, with_stack=True)``, with the phases
and every module's forward marked by profiler ranges. torch's ``MemoryProfile`` then
gives each allocation's category (parameter, gradient, optimizer state, activation,
temporary, input, autograd detail; "unknown" where it cannot tell) and its lifetime.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import torch
from torch._C._profiler import _EventType
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile
from torch.profiler._memory_profiler import Action, MemoryProfile, TensorKey

from reporter.profiling.scopes import module_scopes, parse_scope
from reporter.report.memory_timeline import LiveTensor, MemoryTimeline, Phase, TimelineCheck

PHASES = ("forward", "backward", "optimizer")
PHASE_PREFIX = "perfreport phase: "
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


def record_step(
    subject: Any, loss_of: Any
) -> tuple[MemoryProfile, Any, dict[int, tuple[str, str, str]]]:
    """Profile one training step of a copy of the model: (memory profile, optimizer, the
    names of the parameters' and optimizer state's storages)."""
    model = copy.deepcopy(subject.model).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-8)
    args, kwargs = subject.args, subject.kwargs

    def step() -> None:
        with record_function(PHASE_PREFIX + "forward"):
            loss = loss_of(model(*args, **kwargs))
        with record_function(PHASE_PREFIX + "backward"):
            loss.backward()
        with record_function(PHASE_PREFIX + "optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    # The optimizer's state exists from the first step on: create it with one optimizer
    # step on zero gradients (of the copy), without a forward and backward.
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    activities = [ProfilerActivity.CPU]
    if subject.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with (
        module_scopes(model),
        profile(
            activities=activities, record_shapes=True, profile_memory=True, with_stack=True
        ) as prof,
    ):
        step()
    return MemoryProfile(prof.profiler.kineto_results), optimizer, _storage_names(model, optimizer)


def _storage_names(model: torch.nn.Module, optimizer: Any) -> dict[int, tuple[str, str, str]]:
    """Storage address -> (name, shape, dtype) of each parameter and optimizer state tensor."""
    names: dict[int, tuple[str, str, str]] = {}

    def add(t: torch.Tensor, name: str) -> None:
        shape = "×".join(str(s) for s in t.shape) or "scalar"
        names.setdefault(
            t.untyped_storage().data_ptr(), (name, shape, str(t.dtype).removeprefix("torch."))
        )

    for name, p in model.named_parameters():
        add(p, name)
        for key, value in optimizer.state.get(p, {}).items():
            if isinstance(value, torch.Tensor):
                add(value, f"{key} of {name}")
    return names


def build_timeline(
    memory: MemoryProfile,
    device: torch.device,
    names: dict[int, tuple[str, str, str]] | None = None,
) -> MemoryTimeline:
    """Category totals over time, the peak, and what is alive at the peak."""
    events = list(memory._op_tree.dfs())
    origins = _allocation_origins(events)
    names = names or {}
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    phases = _phases(events)
    start_ns = min((p[1] for p in phases), default=0)
    timeline = [e for e in memory.timeline if e[2][0].device == device]
    totals = dict.fromkeys(CATEGORIES, 0)
    live: dict[tuple[Any, int], tuple[int, str]] = {}
    points: list[tuple[float, list[int]]] = []
    peak, peak_index = -1, -1
    act_peak, act_index = 0, -1
    max_by = dict.fromkeys(CATEGORIES, 0)
    at_phase_end: dict[str, dict[str, int]] = {}
    forward_end_index = -1  # the last event of the forward: every saved activation alive
    for i, (t, action, (key, version), nbytes) in enumerate(timeline):
        for name, _, end in phases:
            if name not in at_phase_end and t > end:
                at_phase_end[name] = {c: v for c, v in totals.items() if v}
        if phases and phases[0][0] == "forward" and t <= phases[0][2]:
            forward_end_index = i
        _apply(memory, totals, live, action, key, version, nbytes)
        time_us = max(t - start_ns, 0) / 1000 if t >= 0 else 0.0
        values = [totals[c] for c in CATEGORIES]
        points.append((time_us, values))
        for c in CATEGORIES:
            max_by[c] = max(max_by[c], totals[c])
        if sum(values) > peak:
            peak, peak_index = sum(values), i
        held = totals["activation"] + totals["autograd_detail"]
        if held > act_peak:
            act_peak, act_index = held, i
    for name, _, _ in phases:
        at_phase_end.setdefault(name, {c: v for c, v in totals.items() if v})
    at_peak = _live_at(memory, timeline, peak_index)
    peak_time = points[peak_index][0] if peak_index >= 0 else 0.0
    largest = sorted(at_peak.items(), key=lambda kv: -kv[1][0])
    by_module = _activations_by_module(at_peak, origins)
    # Activations by module where forward ends (what checkpointing a module would free);
    # at the activation peak itself backward's own tensors, made outside any module, weigh in.
    held_index = forward_end_index if forward_end_index >= 0 else act_index
    at_act_peak = _activations_by_module(_live_at(memory, timeline, held_index), origins)
    at_peak_by_category = Counter()
    for nbytes, category in at_peak.values():
        at_peak_by_category[category] += nbytes
    times, samples = downsample(points, MAX_SAMPLES)
    return MemoryTimeline(
        categories=list(CATEGORIES),
        times_us=times,
        samples=samples,
        phases=[Phase(n, (s - start_ns) / 1000, (e - start_ns) / 1000) for n, s, e in phases],
        peak_bytes=max(peak, 0),
        peak_time_us=peak_time,
        peak_phase=next(
            (
                n
                for n, s, e in phases
                if (s - start_ns) / 1000 <= peak_time <= (e - start_ns) / 1000
            ),
            "",
        ),
        at_peak_by_category={
            c: at_peak_by_category[c] for c in CATEGORIES if at_peak_by_category[c]
        },
        at_peak_by_module=dict(by_module.most_common(20)),
        activations_by_module=dict(at_act_peak.most_common(20)),
        activation_peak_bytes=act_peak,
        activation_peak_time_us=points[act_index][0] if act_index >= 0 else 0.0,
        largest_at_peak=[
            _live_tensor(key, nbytes, category, origins, names)
            for (key, _), (nbytes, category) in largest[:LARGEST]
        ],
        max_by_category=max_by,
        at_phase_end=at_phase_end,
        device=str(device),
    )


def _activations_by_module(
    live: dict[Any, tuple[int, str]], origins: dict[Any, tuple[str, str]]
) -> Counter[str]:
    """Bytes of live activations (and autograd detail) by the module that allocated them."""
    by_module: Counter[str] = Counter()
    for (key, _), (nbytes, category) in live.items():
        if category in ("activation", "autograd_detail"):
            by_module[origins.get(key, ("", ""))[1] or "(outside modules)"] += nbytes
    return by_module


def _category(memory: MemoryProfile, key: Any, version: int) -> str:
    cat = memory._categories.get(key, version) if isinstance(key, TensorKey) else None
    return cat.name.lower() if cat is not None else "unknown"


def _apply(
    memory: MemoryProfile,
    totals: dict[str, int],
    live: dict[tuple[Any, int], tuple[int, str]],
    action: Action,
    key: Any,
    version: int,
    nbytes: int,
) -> None:
    """One timeline event; ``totals`` stays the sum of ``live``. A tensor that the profile
    never saw created (allocated before it started and not reported as pre-existing) is
    not subtracted when it goes, nor counted twice when created twice: torch's own
    coalesced timeline does both, and its totals drift (even below zero)."""

    def put(k: tuple[Any, int], value: tuple[int, str] | None) -> None:
        old = live.pop(k, None)
        if old is not None:
            totals[old[1]] -= old[0]
        if value is not None:
            live[k] = value
            totals[value[1]] += value[0]

    if action in (Action.PREEXISTING, Action.CREATE):
        put((key, version), (nbytes, _category(memory, key, version)))
    elif action in (Action.INCREMENT_VERSION, Action.DESTROY):
        put((key, version), None)
        if action == Action.INCREMENT_VERSION:
            put((key, version + 1), (nbytes, _category(memory, key, version + 1)))


def _live_at(memory: MemoryProfile, timeline: list[Any], index: int) -> dict[Any, tuple[int, str]]:
    """Replay the timeline up to an event: the tensors alive just after it."""
    totals = dict.fromkeys(CATEGORIES, 0)
    live: dict[tuple[Any, int], tuple[int, str]] = {}
    for _t, action, (key, version), nbytes in timeline[: index + 1]:
        _apply(memory, totals, live, action, key, version, nbytes)
    return live


def _allocation_origins(events: list[Any]) -> dict[Any, tuple[str, str]]:
    """TensorKey -> (op, module) of the op that allocated it.

    The op is the allocation's nearest op in the event tree. The module is the innermost
    module scope open at that moment, found by time: with the Python tracer on, the
    profiler parents ops under Python frames, not under the scopes' ranges."""
    marks: list[tuple[int, int, str]] = []  # (time, 0 close / 1 open / 2 allocation, ...)
    allocations: list[tuple[Any, str]] = []
    for e in events:
        if e.typed[0] == _EventType.Allocation:
            if e.typed[1].alloc_size <= 0:
                continue
            key = TensorKey.from_allocation(e.typed[1])
            if key is None:
                continue
            op = e.parent
            while op is not None and op.typed[0] != _EventType.TorchOp:
                op = op.parent
            marks.append((e.start_time_ns, 2, str(len(allocations))))
            allocations.append((key, op.name if op is not None else ""))
            continue
        scope = parse_scope(e.name) if e.typed[0] == _EventType.TorchOp else None
        if scope is not None:
            marks.append((e.start_time_ns, 1, scope[0] or "(model)"))
            marks.append((e.start_time_ns + e.duration_time_ns, 0, ""))
    origins: dict[Any, tuple[str, str]] = {}
    stack: list[str] = []
    for _, kind, value in sorted(marks, key=lambda m: (m[0], m[1])):
        if kind == 1:
            stack.append(value)
        elif kind == 0:
            if stack:
                stack.pop()
        else:
            key, op = allocations[int(value)]
            origins[key] = (op, stack[-1] if stack else "")
    return origins


def _live_tensor(
    key: Any,
    nbytes: int,
    category: str,
    origins: dict[Any, tuple[str, str]],
    names: dict[int, tuple[str, str, str]],
) -> LiveTensor:
    """What a live tensor is: a parameter's or optimizer state's name and shape where its
    storage is one of them, else the op and module that allocated it (the profiler does
    not record output shapes)."""
    op, module = origins.get(key, ("", ""))
    named = names.get(getattr(getattr(key, "storage", None), "ptr", -1))
    if named is not None:
        return LiveTensor(
            nbytes, category, op=named[0], module=module, shape=named[1], dtype=named[2]
        )
    return LiveTensor(nbytes, category, op=op, module=module)


def _phases(events: list[Any]) -> list[tuple[str, int, int]]:
    found = []
    for e in events:
        if e.name.startswith(PHASE_PREFIX):
            found.append(
                (e.name[len(PHASE_PREFIX) :], e.start_time_ns, e.start_time_ns + e.duration_time_ns)
            )
    return sorted(found, key=lambda p: p[1])


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


def checks(
    timeline: MemoryTimeline,
    *,
    parameter_bytes: int,
    trainable_bytes: int,
    trainable_tensors: int,
    activation_estimate: int,
    step_counters_here: bool = True,
) -> list[TimelineCheck]:
    """The timeline's figures against the memory stage's counts."""
    grads = timeline.at_phase_end.get("backward", {}).get("gradient", 0)
    # AdamW: exp_avg and exp_avg_sq per trainable parameter, and one float32 step counter
    # per parameter tensor: a 4-byte scalar kept on the CPU (unless the optimizer is
    # fused or capturable), so on the timeline of a CUDA device it is not there.
    adam = 2 * trainable_bytes + (4 * trainable_tensors if step_counters_here else 0)
    activations = timeline.max_by_category.get("activation", 0)
    rows = [
        ("parameters", timeline.max_by_category.get("parameter", 0), parameter_bytes, 0.0, ""),
        ("gradients after backward", grads, trainable_bytes, 0.0, ""),
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
            activation_estimate,
            0.25,
            "the memory stage counts bytes alive during forward; the profiler's activation "
            "category excludes inputs and autograd detail",
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
    "One training step of a deep copy (train mode, AdamW, its state created beforehand by "
    "one optimizer step on zero gradients, as in any step after the first) under torch.profiler with profile_memory, record_shapes and with_stack; "
    "torch's memory profiler gives each allocation's category and lifetime, profiler ranges "
    "mark the phases and each module's forward. Bytes on the model's device; the chart "
    "keeps, of each of {n} time bins, its highest point, so the peak is always drawn."
)


def timeline_for(subject: Any, parameter_bytes: int, activation_estimate: int) -> MemoryTimeline:
    """Record, analyse and check one training step's memory timeline."""
    from reporter.stages.passes import training_loss

    def loss_of(output: Any) -> torch.Tensor:
        loss = training_loss(subject, output)
        if loss is None:
            raise ValueError("the model's output has no floating tensor to backpropagate")
        return loss

    memory, optimizer, names = record_step(subject, loss_of)
    timeline = build_timeline(memory, subject.device, names)
    trainable = [p for p in subject.model.parameters() if p.requires_grad]
    unique = {(p.data_ptr(), p.numel()): p for p in trainable}
    timeline.checks = checks(
        timeline,
        parameter_bytes=parameter_bytes,
        trainable_bytes=sum(p.numel() * p.element_size() for p in unique.values()),
        trainable_tensors=len(unique),
        activation_estimate=activation_estimate,
        step_counters_here=subject.device.type == "cpu",
    )
    timeline.optimizer = type(optimizer).__name__
    timeline.method = METHOD.format(n=MAX_SAMPLES)
    return timeline
