"""Section of a multi-process run (`perfreport model.py --nproc-per-node N`).

The per-rank trace figures live in the ``trace`` section (the same analysis as
`perfreport trace DIR`). This section says how the run was launched, what each rank did,
whether the gradients really were all-reduced, which rank failed, and how much time each
rank spent in host-side collectives (gloo's ``gloo:all_reduce`` ranges, or any range named
after a c10d collective), which CPU traces carry instead of communication kernels.
Times are microseconds (``*_us``) unless named ``*_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CollectiveTime:
    name: str  # e.g. "gloo:all_reduce"
    count: int = 0
    total_us: float = 0.0  # summed over the profiled steps


@dataclass
class RankComm:
    """Host-side view of one rank's profiled steps: compute vs waiting in collectives."""

    rank: int
    file: str = ""
    steps: int = 0
    step_time_us: float | None = None  # mean ProfilerStep duration
    communication_per_step_us: float = 0.0  # union of collective ranges inside the steps
    compute_per_step_us: float | None = None  # step time less communication
    communication_share: float | None = None  # of step time
    collectives: list[CollectiveTime] = field(default_factory=list)


@dataclass
class RankRun:
    """What one rank reported about itself (from its status file)."""

    rank: int
    state: str = "unknown"  # done, failed, terminated, running (never finished), missing
    host: str = ""
    pid: int | None = None
    phase: str = ""  # what it was doing last (forward, backward, ...)
    step: int = -1  # last step it started
    step_seconds: list[float] = field(default_factory=list)  # wall time of each finished step
    error: str | None = None
    exit_code: int | None = None  # from torchrun's failure summary, when it gave one
    trace_files: list[str] = field(default_factory=list)


@dataclass
class GradCheck:
    """The wrapper's gradients against a hand-made average of the ranks' local gradients."""

    allreduced: bool = False
    inputs_differ: bool = False  # local gradients differ, so equality is not by accident
    elements: int = 0
    max_rel_diff: float | None = None  # max |wrapper grad - mean of local grads| / max |mean|
    local_norms: list[float] = field(default_factory=list)  # by rank
    reduced_norms: list[float] = field(default_factory=list)  # by rank


@dataclass
class DistributedSection:
    world_size: int
    nproc_per_node: int = 1
    nnodes: int = 1
    backend: str = ""  # gloo or nccl
    wrapper: str = "ddp"  # ddp or fsdp
    rendezvous: str = "standalone"  # "standalone" or "c10d HOST:PORT"
    command: str = ""  # the torchrun command line
    status: str = "ok"  # ok, failed (a rank failed), timeout
    seconds: float = 0.0  # wall time of the launch
    profile_steps: list[int] = field(default_factory=list)  # wait, warmup, active
    trace_files: list[str] = field(default_factory=list)  # one per rank, rank order
    ranks: list[RankRun] = field(default_factory=list)
    failed_ranks: list[int] = field(default_factory=list)
    failure: str = ""  # one line naming the failed rank and why
    grads: GradCheck | None = None
    comm: list[RankComm] = field(default_factory=list)
    log_tail: str = ""  # last lines torchrun printed, when a rank failed
    notes: list[str] = field(default_factory=list)
