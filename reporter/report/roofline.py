"""The roofline section: every op placed against the machine's compute and memory ceilings.

Times are microseconds per forward pass; FLOPs follow FlopCounterMode's convention (a
multiply-add is 2 FLOPs); bytes are those of each op's input and output tensors, a lower
bound on what it moves (a kernel that re-reads a tile from memory moves more).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Peak:
    """One measured or published ceiling."""

    value: float  # FLOP/s or bytes/s
    method: str  # how it was obtained
    dtype: str = ""


@dataclass
class MachinePeaks:
    device_name: str
    peak_flops: float  # the compute ceiling used (FLOP/s, dtype of the model)
    peak_bytes_per_s: float  # the memory ceiling used
    call_floor_us: float  # measured cost of one tiny op call: below it an op is overhead
    dtype: str = "float32"
    measured_flops: dict[str, Peak] = field(default_factory=dict)  # dtype -> measured
    spec_flops: dict[str, Peak] = field(default_factory=dict)  # dtype -> vendor spec (GPUs)
    measured_bytes_per_s: Peak | None = None
    spec_bytes_per_s: Peak | None = None
    measured_on: str = ""  # date of the measurement (cached per machine)
    cache_file: str = ""
    refresh: str = ""  # how to measure again
    method: str = ""


@dataclass
class RooflineOp:
    """One op at one set of input shapes, summed over its calls in one forward."""

    name: str  # aten op, e.g. "aten::addmm"
    shapes: str = ""
    module: str = ""  # innermost module of its first call ("" is the model itself)
    calls: int = 0
    flops: int = 0
    bytes: int = 0
    time_us: float = 0.0
    bound_us: float = 0.0  # the time at the roofline: max(FLOPs / peak, bytes / bandwidth)
    intensity: float | None = None  # FLOPs per byte; None when no bytes move
    achieved_flops: float = 0.0  # FLOP/s
    achieved_bytes_per_s: float = 0.0
    efficiency: float = 0.0  # bound_us / time_us: 1.0 is at the roofline
    bound: str = "overhead"  # "compute", "memory" or "overhead"


@dataclass
class RooflineModule:
    name: str
    type: str = ""
    flops: int = 0
    bytes: int = 0
    time_us: float = 0.0  # sum of its ops' times (children included)
    bound_us: float = 0.0
    efficiency: float = 0.0
    regime_us: dict[str, float] = field(default_factory=dict)  # bound -> time


@dataclass
class RooflineChain:
    """Consecutive memory- or overhead-bound ops in one module: a fusion candidate."""

    module: str
    ops: list[str]
    time_us: float
    fused_bound_us: float  # their external traffic (first inputs, last outputs) at bandwidth


@dataclass
class RooflineModel:
    flops: int  # forward FLOPs counted in this pass
    op_time_ms: float  # sum of the ops' times, one forward
    latency_ms: float | None  # timing stage's median, when it ran
    achieved_flops: float | None  # forward FLOPs / latency (or / op time without latency)
    speed_of_light_ms: float  # sum over ops of their roofline time
    headroom: float | None  # latency (or op time) / speed of light
    outside_ops_ms: float | None  # latency - op time: Python, hooks, allocation between ops
    regime_ms: dict[str, float] = field(default_factory=dict)  # bound -> time, one forward
    mfu: float | None = None  # with --train: training-step FLOPs / step time / peak
    mfu_method: str = ""


@dataclass
class RooflineSection:
    machine: MachinePeaks
    model: RooflineModel
    ops: list[RooflineOp] = field(default_factory=list)  # by time, most first
    modules: list[RooflineModule] = field(default_factory=list)
    chains: list[RooflineChain] = field(default_factory=list)
    forwards: int = 0  # forwards timed (median per call)
    ops_total: int = 0  # op groups before truncation
    notes: list[str] = field(default_factory=list)
    method: str = ""
