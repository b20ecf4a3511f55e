"""Sections written by the profile and timing stages.

Times are in microseconds (`_us`) where they come from the profiler's trace, and in
milliseconds (`_ms`) where they come from the timing loop; each field says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reporter.report.timing_counters import AllocatorExperiment, TimingCounters


@dataclass
class ModuleTime:
    """Time inside one module's forward scope, averaged over the profiled steps."""

    name: str  # qualified module name; "" is the model itself
    type: str
    depth: int
    calls: int  # per step
    total_us: float  # per step, the scope's wall time including children
    self_us: float  # per step, total minus the child module scopes
    share: float = 0.0  # total_us / step time
    allocated_bytes: int = 0  # per step, bytes allocated in the scope itself (model's device)


@dataclass
class OpTime:
    """One op (optionally one input-shape group) from the profiler's key averages."""

    name: str
    calls: int  # per step
    self_us: float  # per step, host (CPU) self time
    total_us: float  # per step, including child ops
    category: str = "other"
    input_shapes: str = ""
    device_self_us: float = 0.0  # per step, on CUDA
    flops: int = 0  # per step, where the profiler has a formula (with_flops)


@dataclass
class KernelTime:
    name: str
    calls: int  # per step
    total_us: float  # per step
    category: str = "other"


@dataclass
class ProfileSection:
    mode: str  # "inference" or "train"
    device: str
    trace_files: list[str]  # relative to the report folder
    schedule: dict[str, int] = field(default_factory=dict)  # wait, warmup, active
    settings: dict[str, Any] = field(default_factory=dict)  # record_shapes, with_stack, ...
    step_us: list[float] = field(default_factory=list)  # each ProfilerStep's wall time
    step_us_median: float = 0.0
    modules: list[ModuleTime] = field(default_factory=list)
    top_ops: list[OpTime] = field(default_factory=list)  # by self CPU time, with shapes
    ops_by_name: list[OpTime] = field(default_factory=list)
    categories_us: dict[str, float] = field(default_factory=dict)  # per step, CPU self time
    kernels: list[KernelTime] = field(default_factory=list)  # CUDA only
    kernel_categories_us: dict[str, float] = field(default_factory=dict)
    peak_memory_bytes: int | None = None  # CUDA max_memory_allocated, or CPU profiler events
    peak_memory_method: str = ""
    cpu_peak_bytes: int | None = None  # from the profiler's CPU memory events
    optimizer: str | None = None  # train mode
    notes: list[str] = field(default_factory=list)
    method: str = ""


@dataclass
class LatencyStats:
    """Milliseconds per forward pass, over the measured samples."""

    median: float
    p90: float
    p99: float
    min: float
    max: float
    mean: float = 0.0
    iqr: float = 0.0
    cv: float = 0.0  # standard deviation / mean
    # 95% confidence interval of the median (order statistics); None below 6 samples
    median_low: float | None = None
    median_high: float | None = None


@dataclass
class SweepPoint:
    batch: int
    latency_ms: float  # median
    throughput: float  # samples per second
    peak_memory_bytes: int | None = None
    started_s: float = 0.0  # when this batch started, seconds from the start of the sweep


@dataclass
class BatchSweep:
    points: list[SweepPoint] = field(default_factory=list)
    knee_batch: int | None = None  # smallest batch reaching 90% of the best throughput
    stop_reason: str = ""
    limits: dict[str, float] = field(default_factory=dict)
    memory_method: str = ""


@dataclass
class TimingSection:
    latency_ms: LatencyStats
    throughput: float  # samples per second: batch / median latency
    batch_size: int
    samples_ms: list[float] = field(default_factory=list)  # raw per-iteration sample times
    iterations_per_sample: int = 1
    warmup_iterations: int = 0
    warmup_stable: bool = True
    measure_seconds: float = 0.0
    noisy: bool = False
    noise_reason: str = ""
    cuda_event_ms: LatencyStats | None = None  # CUDA events, on a GPU
    profiler_overhead: float | None = None  # profiled step / timed latency (inference mode)
    threads: int = 0
    device: str = "cpu"
    settings: dict[str, Any] = field(default_factory=dict)  # cudnn.benchmark, TF32, autocast
    sweep: BatchSweep | None = None
    method: str = ""
    # Counters around the timed calls (page faults, CPU time, other load) and, when page
    # faults cost a real share, the allocator experiment run in fresh processes.
    counters: TimingCounters | None = None
    allocator: str = ""  # the malloc the model process used
    allocator_experiment: AllocatorExperiment | None = None
