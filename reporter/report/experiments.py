"""Section written by the experiments stage: fixes applied and timed before and after."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Experiment:
    name: str  # stable id, e.g. "channels_last"
    title: str  # what was changed, for people
    status: str  # "measured", "skipped" or "failed"
    reason: str = ""  # why skipped / how it failed
    baseline_ms: float | None = None  # median per call before, measured right before
    variant_ms: float | None = None  # median per call after
    speedup: float | None = None  # baseline / variant medians (per sample for batch changes)
    speedup_low: float | None = None  # from the quartiles: slowest plausible
    speedup_high: float | None = None
    max_abs_error: float | None = None  # largest output difference
    tolerance: float | None = None  # allowed, relative to the output's scale
    outputs_match: bool | None = None
    size_before_bytes: int | None = None  # serialised weights, for quantisation
    size_after_bytes: int | None = None
    snippet: str = ""  # the change as code
    baseline_samples_ms: list[float] = field(default_factory=list)  # per call, each sample
    variant_samples_ms: list[float] = field(default_factory=list)
    samples_per_call: list[int] = field(default_factory=list)  # batch before and after
    # Deployment variants (a precision or runtime to ship in): output error beside speed.
    deployment: bool = False
    max_rel_error: float | None = None  # max_abs_error / the output's largest magnitude
    top1_agreement: float | None = None  # classifier-shaped outputs: rows whose argmax agrees
    accuracy_delta: float | None = None  # eval_batches() top-1: variant minus model
    verdict: str = ""  # set by the deployment-choice rule against the user's tolerances

    @property
    def clearly_faster(self) -> bool:
        """Measured, and faster even at the slowest plausible ratio (the quartiles)."""
        return self.status == "measured" and (self.speedup_low or 0.0) > 1.0


@dataclass
class ExperimentsSection:
    experiments: list[Experiment] = field(default_factory=list)
    seconds_per_measurement: float = 1.0
    method: str = ""
