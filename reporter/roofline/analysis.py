"""Pure roofline arithmetic: op calls in, regimes, per-op, per-module and model figures out.

Nothing here imports torch, so the figures can be checked on constructed calls. An op's
roofline time is ``max(FLOPs / peak FLOP/s, bytes / peak bytes/s)``: the least time the
hardware allows for that work. Its regime is whichever of three costs is largest: the
compute ceiling, the memory ceiling, or the measured cost of one op call (dispatch, a
kernel launch). An op whose roofline time is below one call's cost can only get faster by
making fewer calls, so it is ``overhead``-bound whatever its intensity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reporter.report.roofline import (
    MachinePeaks,
    RooflineChain,
    RooflineModel,
    RooflineModule,
    RooflineOp,
)

COMPUTE, MEMORY, OVERHEAD = "compute", "memory", "overhead"
REGIMES = (COMPUTE, MEMORY, OVERHEAD)
MIN_CHAIN = 3  # consecutive memory-bound ops in one module worth naming as a fusion


@dataclass(frozen=True)
class OpCall:
    """One op call of one forward, as the timed pass saw it."""

    name: str
    shapes: str
    module: str  # innermost module path ("" for the model itself)
    flops: int
    in_bytes: int
    out_bytes: int
    time_us: float

    @property
    def bytes(self) -> int:
        return self.in_bytes + self.out_bytes


def _ceiling_us(flops: float, nbytes: float, peaks: MachinePeaks) -> tuple[float, float]:
    """The least time each ceiling allows for this work, in µs: (compute, memory)."""
    compute = flops / peaks.peak_flops * 1e6 if peaks.peak_flops > 0 else 0.0
    memory = nbytes / peaks.peak_bytes_per_s * 1e6 if peaks.peak_bytes_per_s > 0 else 0.0
    return compute, memory


def roofline_us(flops: float, nbytes: float, peaks: MachinePeaks) -> float:
    """The least time the two ceilings allow for this work, in µs."""
    return max(_ceiling_us(flops, nbytes, peaks))


def call_bound_us(call: OpCall, peaks: MachinePeaks, scale: float = 1.0) -> float:
    """An op call's roofline time, never above its own measured time (× ``scale``).

    An op that ran faster than the memory ceiling allows read its tensors from a cache
    (the ceiling is main memory's bandwidth): its own time is then the best evidence of
    what the hardware allows it, so the bound is that time, and its efficiency 100%."""
    bound = roofline_us(call.flops, call.bytes, peaks)
    return min(bound, call.time_us * scale) if call.time_us > 0 else bound


def regime(flops: float, nbytes: float, peaks: MachinePeaks, calls: int = 1) -> str:
    """compute, memory or overhead: the largest of the three costs of these calls."""
    compute, memory = _ceiling_us(flops, nbytes, peaks)
    overhead = peaks.call_floor_us * calls
    if overhead >= max(compute, memory):
        return OVERHEAD
    return COMPUTE if compute >= memory else MEMORY


def summarise_op(
    name: str, shapes: str, module: str, calls: Sequence[OpCall], peaks: MachinePeaks
) -> RooflineOp:
    flops = sum(c.flops for c in calls)
    nbytes = sum(c.bytes for c in calls)
    time_us = sum(c.time_us for c in calls)
    bound_us = sum(call_bound_us(c, peaks) for c in calls)
    seconds = time_us / 1e6
    return RooflineOp(
        name=name,
        shapes=shapes,
        module=module,
        calls=len(calls),
        flops=flops,
        bytes=nbytes,
        time_us=time_us,
        bound_us=bound_us,
        intensity=flops / nbytes if nbytes else None,
        achieved_flops=flops / seconds if seconds > 0 else 0.0,
        achieved_bytes_per_s=nbytes / seconds if seconds > 0 else 0.0,
        efficiency=min(bound_us / time_us, 1.0) if time_us > 0 else 0.0,
        bound=regime(flops, nbytes, peaks, len(calls)),
    )


def group_ops(calls: Iterable[OpCall], peaks: MachinePeaks) -> list[RooflineOp]:
    """One row per (op, input shapes), most time first."""
    groups: dict[tuple[str, str], list[OpCall]] = defaultdict(list)
    for c in calls:
        groups[(c.name, c.shapes)].append(c)
    ops = [summarise_op(n, s, _modules_label(g), g, peaks) for (n, s), g in groups.items()]
    ops.sort(key=lambda o: o.time_us, reverse=True)
    return ops


def _modules_label(calls: Sequence[OpCall]) -> str:
    """The module of the first call, and how many others the same op and shapes ran in."""
    others = len({c.module for c in calls}) - 1
    return calls[0].module + (f" (+{others} more)" if others else "")


def _ancestors(path: str) -> list[str]:
    """The module and every enclosing one, the model ("") last: "a.b" -> a.b, a, ""."""
    names = []
    while path:
        names.append(path)
        path = path.rpartition(".")[0]
    names.append("")
    return names


def module_totals(
    calls: Iterable[OpCall], peaks: MachinePeaks, types: dict[str, str]
) -> list[RooflineModule]:
    """Each module's ops summed (children included), in the order modules first ran."""
    rows: dict[str, RooflineModule] = {}
    for c in calls:
        bound = regime(c.flops, c.bytes, peaks)
        for name in _ancestors(c.module):
            row = rows.get(name)
            if row is None:
                row = rows[name] = RooflineModule(name=name, type=types.get(name, ""))
            row.flops += c.flops
            row.bytes += c.bytes
            row.time_us += c.time_us
            row.bound_us += call_bound_us(c, peaks)
            row.regime_us[bound] = row.regime_us.get(bound, 0.0) + c.time_us
    for row in rows.values():
        row.efficiency = min(row.bound_us / row.time_us, 1.0) if row.time_us > 0 else 0.0
    return list(rows.values())


def memory_chains(calls: Sequence[OpCall], peaks: MachinePeaks) -> list[RooflineChain]:
    """Runs of consecutive memory-bound ops in one module (ops that move no bytes, such as
    views, neither break nor join a run): fusing them removes their intermediate traffic."""
    chains: list[RooflineChain] = []
    run: list[OpCall] = []

    def close() -> None:
        if len(run) >= MIN_CHAIN:
            external = run[0].in_bytes + run[-1].out_bytes
            chains.append(
                RooflineChain(
                    module=run[0].module,
                    ops=[c.name for c in run],
                    time_us=sum(c.time_us for c in run),
                    fused_bound_us=roofline_us(0, external, peaks),
                )
            )
        run.clear()

    for c in calls:
        if c.bytes == 0:
            continue
        if run and c.module != run[0].module:
            close()
        if regime(c.flops, c.bytes, peaks) == MEMORY:
            run.append(c)
        else:
            close()
    close()
    chains.sort(key=lambda ch: ch.time_us - ch.fused_bound_us, reverse=True)
    return chains


def model_figures(
    calls: Sequence[OpCall],
    peaks: MachinePeaks,
    latency_ms: float | None,
) -> RooflineModel:
    """Achieved FLOP/s, speed of light and headroom of one forward."""
    flops = sum(c.flops for c in calls)
    op_ms = sum(c.time_us for c in calls) / 1000
    # Ops are timed one by one, each with its call's overhead; where they sum above the
    # latency, each op's time in the timed run was shorter: scale them to it for the cap.
    scale = min(1.0, latency_ms / op_ms) if latency_ms and op_ms > 0 else 1.0
    sol_ms = sum(call_bound_us(c, peaks, scale) for c in calls) / 1000
    regimes = dict.fromkeys(REGIMES, 0.0)
    for c in calls:
        regimes[regime(c.flops, c.bytes, peaks)] += c.time_us / 1000
    outside = None
    if latency_ms is not None:
        # Time between ops (Python, hooks, the allocator) is overhead too. The two figures
        # come from different runs, so a latency below the op sum is noise: floor at 0.
        outside = max(latency_ms - op_ms, 0.0)
        regimes[OVERHEAD] += outside
    measured_ms = latency_ms if latency_ms is not None else op_ms
    return RooflineModel(
        flops=flops,
        op_time_ms=op_ms,
        latency_ms=latency_ms,
        achieved_flops=flops / (measured_ms / 1000) if measured_ms > 0 else None,
        speed_of_light_ms=sol_ms,
        headroom=measured_ms / sol_ms if sol_ms > 0 else None,
        outside_ops_ms=outside,
        regime_ms=regimes,
    )


def mfu(step_flops: float, step_ms: float, peak_flops: float) -> float | None:
    """Model FLOPs utilisation: the share of the peak a training step's FLOPs reach."""
    if step_ms <= 0 or peak_flops <= 0 or step_flops <= 0:
        return None
    return step_flops / (step_ms / 1000) / peak_flops
