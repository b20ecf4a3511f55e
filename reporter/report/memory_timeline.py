"""A training step's memory over time, by the memory profiler's categories (memory.timeline).

Bytes are those of tensors alive on the model's device; times are microseconds from the
start of the recorded step.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Phase:
    name: str  # "forward", "backward" or "optimizer"
    start_us: float
    end_us: float


@dataclass
class LiveTensor:
    """A tensor alive at the peak."""

    bytes: int
    category: str
    op: str = ""  # the op that allocated it
    module: str = ""  # the module whose forward ran the op ("" outside any)
    shape: str = ""
    dtype: str = ""


@dataclass
class TimelineCheck:
    """One timeline figure against the memory stage's count."""

    what: str
    timeline_bytes: int
    expected_bytes: int
    agrees: bool
    note: str = ""


@dataclass
class MemoryTimeline:
    categories: list[str]  # order of the values in each sample
    times_us: list[float] = field(default_factory=list)
    samples: list[list[int]] = field(default_factory=list)  # bytes per category, per time
    phases: list[Phase] = field(default_factory=list)
    peak_bytes: int = 0
    peak_time_us: float = 0.0
    peak_phase: str = ""
    at_peak_by_category: dict[str, int] = field(default_factory=dict)
    at_peak_by_module: dict[str, int] = field(default_factory=dict)  # activations by module
    # The moment activations (+ autograd detail) are highest, usually the end of forward:
    activation_peak_bytes: int = 0
    activation_peak_time_us: float = 0.0
    activations_by_module: dict[str, int] = field(default_factory=dict)  # at forward's end
    largest_at_peak: list[LiveTensor] = field(default_factory=list)
    max_by_category: dict[str, int] = field(default_factory=dict)
    at_phase_end: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> bytes
    checks: list[TimelineCheck] = field(default_factory=list)
    optimizer: str = ""
    device: str = "cpu"
    method: str = ""
    # What the timeline added to the run: keeping the profile stage's last step and
    # categorising it (or, without the profile stage, recording a step of its own too).
    seconds: float = 0.0
