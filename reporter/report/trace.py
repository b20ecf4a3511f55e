"""Section written by the trace stage and `perfreport trace`: figures from Kineto traces.

All times are microseconds (``*_us``), shares are fractions in [0, 1], sizes are bytes.
One trace file is one rank. Per-rank detail lives in ``ranks``; ``overall`` adds the ranks
up (sums of times, utilisation = summed busy time / summed window) and ``top_kernels``
merges the ranks' kernels by name.

Definitions (the tests recompute these from the raw events):
- window: the span the GPU figures cover. With ProfilerSteps: from the first step's start
  to the later of the last step's end and the end of the last GPU op launched before it
  ended (so the GPU work of the last step is counted). Without steps: first to last GPU
  op (or first to last host event on a CPU-only trace).
- busy: union of kernel intervals (overlapping kernels count once), clipped to the window.
- breakdown: every instant of the window counted once, in priority order compute kernels >
  communication kernels > memcpy > memset > idle; so they add up to the window.
- idle split: each gap with no GPU op running is host-wait when the next op's launch call
  began after the gap began (nothing was queued), short when work was queued and the gap is
  at most ``short_gap_threshold_us``, other otherwise (e.g. waiting on an event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.report.roofline import MachinePeaks, RooflineModel, RooflineOp


@dataclass
class Breakdown:
    """Where the window's time went; the five parts add up to the window."""

    compute_us: float = 0.0  # non-communication kernels
    communication_us: float = 0.0  # collective kernels not overlapped by compute
    memcpy_us: float = 0.0  # copies not overlapped by kernels
    memset_us: float = 0.0  # memsets not overlapped by anything above
    idle_us: float = 0.0  # nothing ran on the GPU


@dataclass
class IdleSplit:
    """Why the GPU was idle; the three parts add up to Breakdown.idle_us."""

    host_wait_us: float = 0.0  # nothing queued: the CPU had not launched the next op yet
    short_gap_us: float = 0.0  # work queued, gap <= short_gap_threshold_us (launch latency)
    other_us: float = 0.0  # work queued but not started (stream waits, syncs), or unknown
    gaps: int = 0
    short_gap_threshold_us: float = 10.0


@dataclass
class NameTime:
    name: str
    count: int = 0
    total_us: float = 0.0


@dataclass
class KernelRow:
    name: str  # full kernel name as CUPTI reports it
    short_name: str  # without return type, template and call arguments
    count: int = 0
    total_us: float = 0.0
    mean_us: float = 0.0
    max_us: float = 0.0
    share: float = 0.0  # of summed kernel time
    launched_by: str = ""  # the op that launched it most (by time): innermost cpu_op
    category: str = "compute"  # "compute" or "communication"
    tensor_core: bool = False  # name matches a Tensor Core kernel family
    matmul_or_conv: bool = False  # a GEMM/convolution kernel (Tensor-Core eligible)
    # From the fields Kineto writes per kernel, means weighted by call duration
    # (tb-profiler's definitions); None when the trace lacks them.
    blocks_per_sm: float | None = None
    warps_per_sm: float | None = None
    sm_efficiency: float | None = None  # mean of min(blocks per SM, 1)
    occupancy: float | None = None  # est. achieved occupancy, a fraction


@dataclass
class TensorCoreFigures:
    available: bool | None = None  # device compute capability >= 7.0; None when unknown
    tensor_core_us: float = 0.0  # summed time of Tensor Core kernels
    share: float = 0.0  # of summed kernel time
    matmul_conv_us: float = 0.0  # summed time of GEMM/convolution kernels
    not_tensor_core_us: float = 0.0  # GEMM/convolution time in non-Tensor-Core kernels
    not_tensor_core_share: float = 0.0  # of summed kernel time
    top_not_tensor_core: list[KernelRow] = field(default_factory=list)


@dataclass
class LaunchFigures:
    kernels: int = 0
    median_kernel_us: float | None = None
    tiny_kernels: int = 0  # shorter than tiny_kernel_threshold_us
    tiny_share: float = 0.0  # of kernel count
    tiny_kernel_threshold_us: float = 10.0
    shorter_than_launch: int = 0  # kernel ran for less time than its launch call took
    shorter_than_launch_share: float = 0.0
    launch_delay_median_us: float | None = None  # kernel start - launch call start
    launch_delay_p90_us: float | None = None
    runtime_us: float = 0.0  # time in CUDA runtime/driver calls
    launch_call_us: float = 0.0  # of which in kernel-launch calls
    slow_calls: int = 0  # runtime calls longer than slow_call_threshold_us
    slow_call_us: float = 0.0
    slow_call_threshold_us: float = 50.0
    slow_call_names: list[NameTime] = field(default_factory=list)
    kernels_per_ms: float = 0.0  # kernel launches per millisecond of window
    # HTA's launch delay over the whole trace: start of each op enqueued by a launch call
    # (kernel, async copy, memset) - end of that call (0 when negative)
    launch_to_start_median_us: float | None = None
    launch_to_start_mean_us: float | None = None
    launch_to_start_p90_us: float | None = None
    launch_to_start_max_us: float | None = None


@dataclass
class SyncSite:
    """Host-device synchronisations of one kind from one caller."""

    kind: str  # e.g. "cudaStreamSynchronize", "aten::item", "DtoH copy"
    op: str = ""  # outermost framework op around it, e.g. "aten::item"
    context: str = ""  # innermost user frame, module or annotation around it
    count: int = 0
    total_us: float = 0.0  # host time spent in these calls
    in_steps: int = 0  # how many fell inside a ProfilerStep


@dataclass
class SyncFigures:
    """Real host-device synchronisations: a synchronising runtime call (stream, device or
    event synchronize, cudaMemcpy, a device-to-host copy into pageable memory), counted
    once however many nest, and once for all those inside one op (a .cpu() copy); an
    item()/_local_scalar_dense/is_nonzero/nonzero holding one is that one sync. A value
    read holding none (a CPU tensor's) is not a sync."""

    blocking_calls: int = 0  # syncs in the window (the name predates value reads)
    blocking_us: float = 0.0  # host time in their synchronising calls (nested ones once)
    in_steps: int = 0  # of which inside ProfilerSteps
    in_steps_us: float = 0.0  # host time they took
    value_reads_without_sync: int = 0  # item() and friends with no sync inside
    per_step: float | None = None
    sites: list[SyncSite] = field(default_factory=list)
    gpu_sync_events: dict[str, int] = field(default_factory=dict)  # cuda_sync records by kind


@dataclass
class MemcpyRow:
    direction: str  # HtoD, DtoH, DtoD, PtoP, HtoH
    source: str = ""  # Pageable, Pinned, Device, ...
    destination: str = ""
    count: int = 0
    bytes: int = 0
    total_us: float = 0.0


@dataclass
class MemcpyFigures:
    count: int = 0
    bytes: int = 0
    total_us: float = 0.0
    pageable_count: int = 0  # host side in pageable memory: synchronous, slower
    pageable_bytes: int = 0
    pageable_us: float = 0.0
    rows: list[MemcpyRow] = field(default_factory=list)


@dataclass
class StreamRow:
    stream: int
    busy_us: float = 0.0  # union of this stream's ops in the window
    ops: int = 0
    kernels: int = 0
    # HTA's queue length (ops launched, not yet started), over the whole trace: mean of
    # its samples and maximum; None when no op of the stream has a launch call.
    queue_mean: float | None = None
    queue_max: int | None = None


@dataclass
class StreamFigures:
    streams: list[StreamRow] = field(default_factory=list)
    concurrent_us: float = 0.0  # time with at least two streams running
    concurrent_share: float = 0.0  # of GPU active time


@dataclass
class CommFigures:
    kernels: int = 0
    total_us: float = 0.0  # union of collective kernels in the window
    overlapped_us: float = 0.0  # of which compute kernels ran at the same time
    exposed_us: float = 0.0  # total - overlapped
    overlap_share: float = 0.0  # overlapped / total
    share_of_window: float = 0.0  # total / window
    collectives: list[NameTime] = field(default_factory=list)


@dataclass
class GpuFigures:
    device: int = 0
    busy_us: float = 0.0  # union of kernel intervals in the window
    active_us: float = 0.0  # union of kernels, memcpy and memset
    utilisation: float = 0.0  # busy / window
    kernel_count: int = 0
    kernel_sum_us: float = 0.0  # summed kernel durations (overlaps count twice)
    breakdown: Breakdown = field(default_factory=Breakdown)
    idle: IdleSplit = field(default_factory=IdleSplit)
    tensor_cores: TensorCoreFigures = field(default_factory=TensorCoreFigures)
    launch: LaunchFigures = field(default_factory=LaunchFigures)
    memcpy: MemcpyFigures = field(default_factory=MemcpyFigures)
    streams: StreamFigures = field(default_factory=StreamFigures)
    communication: CommFigures = field(default_factory=CommFigures)
    # tb-profiler's estimates over its window, tb_window_us (None when kernels lack the
    # fields or the window is empty):
    # SM efficiency = time integral of min(summed blocks per SM of running kernels, 1) /
    # window; occupancy = est. achieved occupancy weighted by kernel time (a fraction).
    sm_efficiency: float | None = None
    occupancy: float | None = None
    # tb-profiler's utilisation window (first step's start to last step's end, CPU-only
    # time included; without steps the span of the host ops) and busy time / that window.
    tb_window_us: float = 0.0
    tb_utilisation: float | None = None


@dataclass
class StepFigures:
    name: str  # "ProfilerStep#N"
    number: int = 0
    start_us: float = 0.0  # from the rank's window start
    duration_us: float = 0.0  # as recorded on the CPU
    window_us: float = 0.0  # span used for the GPU figures: until the next step starts
    gpu_busy_us: float | None = None
    utilisation: float | None = None
    breakdown: Breakdown | None = None
    idle: IdleSplit | None = None
    kernels: int = 0
    syncs: int = 0
    dataloader_us: float = 0.0
    dataloader_exposed_us: float = 0.0  # of which no GPU op ran


@dataclass
class OpRow:
    """A CPU op by self time (its duration less that of the ops it called)."""

    name: str
    count: int = 0
    self_us: float = 0.0
    total_us: float = 0.0  # inclusive; nested calls of the same op count again
    module: str = ""  # module it ran in most (by self time), when the trace has stacks


@dataclass
class ModuleRow:
    module: str  # path of nn.Module frames, e.g. "Sequential_0/Linear_1"
    self_us: float = 0.0  # self time of the ops that ran directly in it
    ops: int = 0


@dataclass
class MemoryPeak:
    device: str  # "cuda:0", "cpu"
    peak_allocated_bytes: int = 0
    peak_reserved_bytes: int = 0
    capacity_bytes: int | None = None  # device memory from deviceProperties
    share: float | None = None  # peak allocated / capacity


@dataclass
class TraceRoofline:
    """Ops with FLOPs (with_flops, record_shapes) against the device's published ceilings.

    Each op is the outermost cpu_op with FLOPs; its time is that of the kernels launched
    inside it (its own duration on a CPU-only trace); its bytes are its tensor inputs, a
    lower bound (outputs are not in the trace). ``machine`` and ``model`` are None where no
    published peak is known (a CPU, an unknown GPU or dtype): ``notes`` say why, and the
    ops then carry FLOPs, bytes and achieved rates only (bound "")."""

    device_name: str = ""
    time_source: str = ""  # "GPU kernels launched inside each op" or "each op's duration"
    machine: MachinePeaks | None = None  # ceilings from the data sheet; call_floor_us: launch
    model: RooflineModel | None = None  # latency_ms None: figures over the ops' summed time
    calls: int = 0  # op calls placed
    flops: int = 0
    time_us: float = 0.0  # their summed time
    without_kernels: int = 0  # ops with FLOPs that launched no kernel (left out)
    ops: list[RooflineOp] = field(default_factory=list)  # by time, most first
    ops_total: int = 0  # op groups before truncation
    notes: list[str] = field(default_factory=list)
    method: str = ""


@dataclass
class RankFigures:
    rank: int
    file: str = ""
    rank_known: bool = True  # False: no distributedInfo, numbered by file order
    world_size: int | None = None
    backend: str = ""
    events: int = 0
    device_name: str = ""
    device_memory_bytes: int | None = None
    compute_capability: str = ""  # e.g. "8.0"
    window_us: float = 0.0
    step_count: int = 0
    step_time_us: float | None = None  # mean recorded ProfilerStep duration
    step_time_median_us: float | None = None
    compute_per_step_us: float | None = None  # breakdown.compute / steps (or the window)
    communication_per_step_us: float | None = None  # collective time (overlapped or not)
    idle_per_step_us: float | None = None
    steps: list[StepFigures] = field(default_factory=list)
    gpu: GpuFigures | None = None
    top_kernels: list[KernelRow] = field(default_factory=list)
    syncs: SyncFigures = field(default_factory=SyncFigures)
    cpu_ops: list[OpRow] = field(default_factory=list)
    cpu_modules: list[ModuleRow] = field(default_factory=list)
    cpu_op_self_us: float = 0.0  # summed self time of all CPU ops in the window
    dataloader_us: float = 0.0  # DataLoader/data-loading ranges inside the window
    dataloader_share: float | None = None  # of the window (wall-clock share)
    # The part of dataloader_us with no kernel, memcpy or memset running (tb-profiler's
    # "DataLoader" time; equal to dataloader_us on a CPU-only trace), and its share.
    dataloader_exposed_us: float = 0.0
    dataloader_exposed_share: float | None = None
    memory: list[MemoryPeak] = field(default_factory=list)
    # Host-side collectives (gloo:all_reduce, ...) in the window: union of their ranges.
    host_comm_us: float = 0.0
    host_comm_share: float | None = None  # of the window
    host_collectives: list[NameTime] = field(default_factory=list)
    # Timed events left out for NaN/infinite/non-numeric timestamps or negative durations:
    # how many, and the most frequent names with their counts.
    bad_events: int = 0
    bad_event_names: list[NameTime] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Only for traces whose ops carry FLOPs (or matrix products with shapes).
    roofline: TraceRoofline | None = None


@dataclass
class Straggler:
    rank: int
    metric: str  # "step_time_us" or "compute_per_step_us"
    value_us: float = 0.0
    others_median_us: float = 0.0
    excess: float = 0.0  # value / others' median - 1


@dataclass
class RankSpread:
    """How the ranks differ; a straggler exceeds the median of the other ranks."""

    ranks: int = 0
    step_time_min_us: float | None = None
    step_time_max_us: float | None = None
    step_time_median_us: float | None = None
    step_time_spread: float | None = None  # max / min - 1
    compute_min_us: float | None = None  # per step
    compute_max_us: float | None = None
    compute_spread: float | None = None
    slowest_rank: int | None = None  # by compute per step (step time when no GPU)
    fastest_rank: int | None = None
    threshold: float = 0.1  # excess over the others' median that marks a straggler
    stragglers: list[Straggler] = field(default_factory=list)


@dataclass
class OverallFigures:
    ranks: int = 0
    has_gpu: bool = False
    window_us: float = 0.0  # summed over ranks
    step_count: int = 0  # most steps in any rank
    step_time_us: float | None = None  # mean over ranks
    gpu_busy_us: float = 0.0
    utilisation: float | None = None  # summed busy / summed window
    kernel_count: int = 0
    kernel_sum_us: float = 0.0
    breakdown: Breakdown | None = None
    idle: IdleSplit | None = None
    tensor_core_share: float | None = None
    not_tensor_core_share: float | None = None
    communication_us: float = 0.0
    communication_exposed_us: float = 0.0
    communication_share: float | None = None  # of the window
    memcpy_pageable_count: int = 0
    blocking_syncs: int = 0
    dataloader_share: float | None = None
    dataloader_exposed_share: float | None = None
    host_comm_us: float = 0.0
    host_comm_share: float | None = None  # of the summed windows
    tb_window_us: float = 0.0  # summed tb-profiler windows of the ranks with a GPU
    tb_utilisation: float | None = None  # busy in those windows / their sum


@dataclass
class TraceSection:
    files: list[str] = field(default_factory=list)
    ranks: list[RankFigures] = field(default_factory=list)
    overall: OverallFigures = field(default_factory=OverallFigures)
    top_kernels: list[KernelRow] = field(default_factory=list)  # merged across ranks
    spread: RankSpread | None = None  # only with two or more ranks
    notes: list[str] = field(default_factory=list)
    analysis_seconds: float = 0.0
