"""Roofline of a trace: ops with FLOPs placed against a known GPU's published ceilings.

Needs the cpu_op args torch.profiler writes with ``with_flops=True`` ("flops") and
``record_shapes=True`` ("Input Dims", "Input type"). Where an op has no "flops" arg, a
matrix product's FLOPs follow from its shapes (``events.FLOP_SHAPE_OPS``). Each placed op
is the outermost cpu_op with FLOPs (so nested ops count once); its time is the summed
duration of the kernels launched inside it (linked by correlation id through the launch
call) on a GPU trace, its own duration on a CPU-only trace. Its bytes are the sizes of its
tensor inputs: a lower bound, as the trace does not record outputs. The ceilings are the
device's published dense peaks (``reporter/roofline/specs.py``); a CPU or an unknown GPU
has none here, so its ops are listed with their achieved rates only.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from math import prod
from typing import Any

from reporter.report.roofline import MachinePeaks, RooflineOp
from reporter.report.trace import TraceRoofline
from reporter.roofline.analysis import OpCall, group_ops, model_figures
from reporter.roofline.specs import published_peaks, spec_for
from reporter.trace.analyzers.launches import _LAUNCH_CALL
from reporter.trace.analyzers.window import Window
from reporter.trace.events import KERNEL, GpuEvent, OpShapes, TraceEvents

DEFAULT_LAUNCH_US = 5.0  # one kernel launch's host cost where the trace has no launch call
TOP_OPS = 25

# Bytes per element of the dtype names the profiler writes in "Input type".
ELEMENT_BYTES = {
    "float": 4,
    "double": 8,
    "c10::Half": 2,
    "c10::BFloat16": 2,
    "long": 8,
    "long int": 8,
    "int64_t": 8,
    "int": 4,
    "short": 2,
    "short int": 2,
    "signed char": 1,
    "unsigned char": 1,
    "bool": 1,
    "c10::complex<float>": 8,
    "c10::complex<double>": 16,
    "c10::complex<c10::Half>": 4,
    "c10::Float8_e4m3fn": 1,
    "c10::Float8_e5m2": 1,
    "c10::Float8_e4m3fnuz": 1,
    "c10::Float8_e5m2fnuz": 1,
}
# The dtype names of the published peaks (specs.py) for the profiler's names.
SPEC_DTYPE = {"float": "float32", "c10::Half": "float16", "c10::BFloat16": "bfloat16"}


def element_bytes(type_name: Any) -> int | None:
    return ELEMENT_BYTES.get(type_name) if isinstance(type_name, str) else None


def _is_shape(dims: Any) -> bool:
    return isinstance(dims, list) and all(type(d) is int and d >= 0 for d in dims)


def input_bytes(shapes: OpShapes) -> int:
    """Summed size of the tensor inputs (a scalar, a list or an unknown dtype adds 0)."""
    total = 0
    for dims, type_name in zip(shapes.dims, shapes.types, strict=False):
        size = element_bytes(type_name)
        if size is not None and _is_shape(dims) and dims:
            total += prod(dims) * size
    return total


def shape_flops(name: str, dims: Sequence[Any]) -> int | None:
    """torch's FLOP formulas for matrix products from the input shapes (None if unusable):
    mm (m,k)@(k,n) and addmm (bias, m,k, k,n) are 2·m·k·n; bmm and baddbmm b times that."""
    tensors = [d for d in dims if _is_shape(d) and d]
    if name in ("aten::mm", "aten::addmm") and len(tensors) >= 2:
        a, b = tensors[-2], tensors[-1]
        if len(a) == 2 and len(b) == 2 and a[1] == b[0]:
            return 2 * a[0] * a[1] * b[1]
    if name in ("aten::bmm", "aten::baddbmm") and len(tensors) >= 2:
        a, b = tensors[-2], tensors[-1]
        if len(a) == 3 and len(b) == 3 and a[0] == b[0] and a[2] == b[1]:
            return 2 * a[0] * a[1] * a[2] * b[2]
    return None


def op_flops(name: str, shapes: OpShapes) -> int | None:
    return shapes.flops if shapes.flops is not None else shape_flops(name, shapes.dims)


def shapes_label(shapes: OpShapes) -> str:
    return ", ".join(
        f"{t}[{'×'.join(map(str, d))}]" if _is_shape(d) and d else str(t)
        for d, t in zip(shapes.dims, shapes.types, strict=False)
    )


def placed_ops(ev: TraceEvents) -> dict[int, int]:
    """Host index -> FLOPs of the outermost cpu_ops with FLOPs (an op with FLOPs inside
    another, e.g. a product inside a larger op that counts it, is left to the outer one)."""
    flops = {}
    for i, shapes in ev.op_shapes.items():
        n = op_flops(ev.host[i].name, shapes)
        if n is not None:
            flops[i] = n
    return {i: n for i, n in flops.items() if _outer_placed(ev, i, flops) == i}


def _outer_placed(ev: TraceEvents, i: int, placed: dict[int, Any]) -> int:
    """The outermost host event with FLOPs enclosing i (i itself included), or -1."""
    found = -1
    host = ev.host
    while i >= 0:
        if i in placed:
            found = i
        i = host[i].parent
    return found


def kernel_time(ev: TraceEvents, kernels: Sequence[GpuEvent], placed: dict[int, int]) -> dict:
    """Placed op -> (summed duration of its kernels, their names)."""
    out: dict[int, list[Any]] = defaultdict(lambda: [0.0, Counter()])
    owner: dict[int, int] = {}  # launch call -> placed op (or -1)
    for g in kernels:
        if g.launch < 0:
            continue
        op = owner.get(g.launch)
        if op is None:
            op = owner[g.launch] = _outer_placed(ev, ev.host[g.launch].parent, placed)
        if op >= 0:
            entry = out[op]
            entry[0] += g.end - g.start
            entry[1][g.name] += 1
    return out


def launch_cost_us(ev: TraceEvents) -> tuple[float, str]:
    """The host cost of one kernel launch: the median kernel-launch runtime call."""
    durations = [
        ev.host[i].end - ev.host[i].start
        for i in ev.calls()
        if _LAUNCH_CALL.search(ev.host[i].name)
    ]
    if durations:
        return statistics.median(durations), (
            f"median of the trace's {len(durations):,} kernel-launch calls: below it the CPU "
            "cannot launch work as fast as the GPU finishes it"
        )
    return DEFAULT_LAUNCH_US, (
        f"{DEFAULT_LAUNCH_US:g} µs, a typical kernel launch (the trace has no launch calls)"
    )


def spec_peaks(device: str, dtype: str, floor_us: float, floor_how: str) -> MachinePeaks | None:
    """Ceilings from the device's data sheet for this dtype, or None when not known."""
    spec = published_peaks(device) if device else None
    if spec is None or dtype not in spec[0]:
        return None
    flops, bandwidth = spec
    return MachinePeaks(
        device_name=device,
        peak_flops=flops[dtype].value,
        peak_bytes_per_s=bandwidth.value,
        call_floor_us=floor_us,
        dtype=dtype,
        spec_flops=flops,
        spec_bytes_per_s=bandwidth,
        method=f"published peaks of the trace's device; one call: {floor_how}",
    )


def trace_roofline(
    ev: TraceEvents, kernels: Sequence[GpuEvent], device: str, window: Window
) -> TraceRoofline:
    """The ops with FLOPs placed on the device's roofline where it is known: on a GPU trace
    those that launched the window's ``kernels`` (an op may start before the window, which
    begins at the first GPU op), on a CPU-only trace those that start in the window."""
    lo, hi = window.start, window.end
    placed = placed_ops(ev)
    on_gpu = any(g.cat == KERNEL for g in ev.gpu)
    times = kernel_time(ev, kernels, placed) if on_gpu else {}
    placed = {i: n for i, n in placed.items() if i in times or lo <= ev.host[i].start <= hi}
    out = TraceRoofline(device_name=device)
    if not placed:
        return out
    if not on_gpu and ev.calls():
        # GPU work was launched but not recorded: an op's duration is only its launch.
        out.notes.append(
            "no roofline: the trace has CUDA runtime calls but no kernel events, so the ops' "
            "GPU time is unknown"
        )
        return out
    host = ev.host
    calls: list[OpCall] = []
    dtype_flops: Counter[str] = Counter()
    kernel_names: Counter[str] = Counter()
    for i, flops in placed.items():
        h = host[i]
        if on_gpu:
            entry = times.get(i)
            if entry is None:
                out.without_kernels += 1
                continue
            time_us = entry[0]
            kernel_names.update(entry[1])
        else:
            time_us = h.end - h.start
        shapes = ev.op_shapes[i]
        first = next((t for t in shapes.types if t in ELEMENT_BYTES), "")
        dtype_flops[first] += flops
        calls.append(
            OpCall(h.name, shapes_label(shapes), "", flops, input_bytes(shapes), 0, time_us)
        )
    out.time_source = "GPU kernels launched inside each op" if on_gpu else "each op's duration"
    if out.without_kernels:
        out.notes.append(
            f"{out.without_kernels} op call{'s' if out.without_kernels != 1 else ''} with "
            "FLOPs launched no kernel in the analysed window: left out"
        )
    if not calls:
        return out
    main = dtype_flops.most_common(1)[0][0]
    dtype = SPEC_DTYPE.get(main, "")
    if dtype == "float32" and any("tf32" in n.lower() for n in kernel_names):
        dtype = "tf32"  # TF32 Tensor Core kernels ran: float32 products use that ceiling
    floor_us, floor_how = launch_cost_us(ev)
    peaks = spec_peaks(device, dtype, floor_us, floor_how) if on_gpu else None
    out.machine = peaks
    out.flops = sum(c.flops for c in calls)
    out.time_us = sum(c.time_us for c in calls)
    out.calls = len(calls)
    if peaks is not None:
        ops = group_ops(calls, peaks)
        out.model = model_figures(calls, peaks, None)
        if len(dtype_flops) > 1:
            out.notes.append(
                f"ops of several dtypes: all are placed against the {dtype} ceiling of the "
                "dtype with the most FLOPs"
            )
    else:
        ops = _unplaced(calls)
        out.notes.append(_why_not(on_gpu, device, dtype, main))
    out.ops_total = len(ops)
    out.ops = ops[:TOP_OPS]
    out.method = (
        f"time: {out.time_source}; FLOPs: the trace's 'flops' args (torch's formulas, 2 per "
        "multiply-add), else 2·m·k·n from a matrix product's shapes; bytes: the op's tensor "
        "inputs from 'Input Dims' × the element size of 'Input type', a lower bound (the "
        "trace does not record outputs)"
    )
    return out


def _unplaced(calls: Sequence[OpCall]) -> list[RooflineOp]:
    """Ops grouped by name and shapes with their achieved rates, without ceilings."""
    groups: dict[tuple[str, str], list[OpCall]] = defaultdict(list)
    for c in calls:
        groups[(c.name, c.shapes)].append(c)
    ops = []
    for (name, shapes), group in groups.items():
        flops = sum(c.flops for c in group)
        nbytes = sum(c.bytes for c in group)
        seconds = sum(c.time_us for c in group) / 1e6
        ops.append(
            RooflineOp(
                name=name,
                shapes=shapes,
                calls=len(group),
                flops=flops,
                bytes=nbytes,
                time_us=seconds * 1e6,
                intensity=flops / nbytes if nbytes else None,
                achieved_flops=flops / seconds if seconds > 0 else 0.0,
                achieved_bytes_per_s=nbytes / seconds if seconds > 0 else 0.0,
                bound="",
            )
        )
    ops.sort(key=lambda o: o.time_us, reverse=True)
    return ops


def _why_not(on_gpu: bool, device: str, dtype: str, type_name: str) -> str:
    if not on_gpu:
        return (
            "no roofline: a CPU-only trace, and no published peak is known for a CPU "
            "(perfreport MODEL measures the CPU's own ceilings in its roofline section)"
        )
    if not device:
        return "no roofline: the trace has no deviceProperties, so the GPU is not known"
    if spec_for(device) is None:
        return f"no roofline: no published peak is known for {device}"
    if not type_name:
        return (
            "no roofline: the ops carry no 'Input type' (recorded without record_shapes?), "
            "so their dtype, and so the compute ceiling, is unknown"
        )
    return f"no roofline: no published {dtype or type_name or 'dtype'} peak is known for {device}"
