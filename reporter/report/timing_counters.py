"""What the timing stage saw besides the latency: counters around the timed calls, and the
allocator experiment run in fresh processes when page faults cost a real share."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TimingCounters:
    """getrusage(RUSAGE_SELF), /proc/stat and /proc/loadavg around the timed calls
    (warm-up excluded). Every figure is over the whole window of ``calls`` forwards."""

    wall_s: float
    calls: int
    threads: int  # torch.get_num_threads()
    cpus: int  # CPUs the process may run on (affinity)
    cpu_user_s: float  # this process, all threads
    cpu_system_s: float
    minor_faults: int
    major_faults: int = 0
    voluntary_switches: int = 0
    involuntary_switches: int = 0  # preempted: a sign of other load
    minor_faults_per_call: float = 0.0
    system_share: float = 0.0  # system / (user + system) CPU time
    # Kernel CPU seconds per wall second, all threads together: page faults are kernel
    # time, so this is about the share of the latency they cost (a thread's worth: 1.0).
    system_per_wall: float = 0.0
    cpu_per_thread: float = 0.0  # CPU time / (wall x min(threads, cpus))
    others_cores: float | None = None  # other processes' CPU time on our CPUs / wall
    steal_share: float | None = None  # hypervisor steal / (wall x CPUs)
    throttled_share: float | None = None  # cgroup CPU quota throttling / wall
    loadavg_1min: float | None = None  # at the end of the window


@dataclass
class AllocatorVariant:
    """One fresh model process timed with extra environment variables."""

    name: str  # "glibc (default)", "glibc, thresholds high", "jemalloc", "tcmalloc"
    env: dict[str, str] = field(default_factory=dict)  # added to the environment
    status: str = "ok"  # ok, failed
    error: str = ""
    median_ms: float | None = None
    median_low: float | None = None  # 95% interval of the median
    median_high: float | None = None
    minor_faults_per_call: float | None = None
    allocator: str = ""  # the malloc the process really used (from /proc/self/maps)
    noise_reason: str = ""  # the timing stage's, when its figure was noisy
    speedup: float | None = None  # baseline median / this median


@dataclass
class AllocatorExperiment:
    baseline: AllocatorVariant
    variants: list[AllocatorVariant] = field(default_factory=list)
    reason: str = ""  # why it ran
    method: str = ""
