"""Compare two Reports: what changed between a base run and a head run.

Pure: Reports in, a ReportDiff out. Counts (parameters, FLOPs, memory estimates) are
deterministic, so any change is real. Timings are not: each timing figure gets an interval
for its change, computed from both runs' raw samples (reporter.stats), and the verdict
compares that interval with the threshold:

- "worse" / "better": the whole interval lies beyond the threshold;
- "within noise": the whole interval lies inside it;
- "inconclusive": the interval straddles it (or cannot be computed: too few samples).

A noisy run widens its interval; it does not block the verdict. With a two-sided interval
at confidence c, two runs of the same code are called "worse" with probability at most
(1 - c) / 2 per figure, whatever the shape of the latency distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from reporter.errors import UsageError
from reporter.profiling.stats import quantile
from reporter.report import Finding, Report
from reporter.stats import (
    ShiftInterval,
    mann_whitney_p,
    min_quantile_samples,
    quantile_interval,
    shift_interval,
    trimmed_rank,
)
from reporter.units import finite

MODULE_THRESHOLD = 0.10  # per-module change shown when it moves by 10% or more ...
MODULE_MIN_SHARE = 0.005  # ... and the module holds at least 0.5% of the model's total
MODULE_LIMIT = 25
DEFAULT_CONFIDENCE = 0.95
DEFAULT_THRESHOLD = 0.05  # a timing change under 5% is never called worse or better
TIME_MIN_SHARE = 0.02  # module and op times listed when they hold 2% of a profiled step
MORE_SAMPLES = 4  # the detectable change is also estimated for 4x the samples
MAX_SAMPLES = 1000  # reporter.profiling.measure.MAX_SAMPLES (that module imports torch)


@dataclass
class MetricChange:
    key: str  # stable id, also the budget name: "params", "flops", "latency_ms", ...
    label: str
    unit: str  # "count", "flops", "bytes", "ms", "per_s"
    base: float | None
    head: float | None
    delta: float | None = None
    relative: float | None = None  # delta / base
    # "worse", "better", "within noise", "unchanged", "inconclusive" (a timing whose
    # interval straddles the threshold, or too few samples for one) or "not compared"
    # (measured in one run only, or not a finite number)
    verdict: str = "not compared"
    noise: float | None = None  # the threshold band, in the metric's unit (timings)
    note: str = ""
    # Timings: the interval for the change head/base - 1 at `confidence`, and its estimate
    change_estimate: float | None = None
    change_low: float | None = None
    change_high: float | None = None
    confidence: float | None = None
    threshold: float | None = None
    p_value: float | None = None  # Mann-Whitney, two-sided: no change vs. some change


@dataclass
class Detectable:
    """What a pair of runs can tell apart: the smallest slowdown of the median it could
    call "worse" (the head's samples, shifted, until the interval clears the threshold)."""

    change: float  # relative, e.g. 0.12 for +12%
    confidence: float
    threshold: float
    base_samples: int
    head_samples: int
    with_more_samples: float  # the same, estimated with MORE_SAMPLES x the samples per run
    text: str = ""


@dataclass
class TimeChange:
    """One module's or op's time per profiled step, base vs head."""

    kind: str  # "module" or "op"
    name: str
    type: str  # module class, or op category
    base_us: float | None
    head_us: float | None
    relative: float | None = None
    change_low: float | None = None
    change_high: float | None = None
    verdict: str = "not compared"
    note: str = ""


@dataclass
class ModuleChange:
    name: str
    type: str
    metric: str  # "flops" or "params"
    base: int | None
    head: int | None
    delta: int
    relative: float | None


@dataclass
class FindingRef:
    rule: str
    severity: str
    title: str
    target: str | None = None


@dataclass
class ReportDiff:
    base_name: str
    head_name: str
    base_source: str = ""
    head_source: str = ""
    base_created: str = ""
    head_created: str = ""
    metrics: list[MetricChange] = field(default_factory=list)
    findings_added: list[FindingRef] = field(default_factory=list)
    findings_removed: list[FindingRef] = field(default_factory=list)
    modules: list[ModuleChange] = field(default_factory=list)
    modules_left_out: int = 0  # module changes above the threshold not listed
    module_threshold: float = MODULE_THRESHOLD
    notes: list[str] = field(default_factory=list)
    confidence: float = DEFAULT_CONFIDENCE
    threshold: float = DEFAULT_THRESHOLD
    detectable: Detectable | None = None
    times: list[TimeChange] = field(default_factory=list)  # modules and ops, per step
    times_left_out: int = 0
    times_method: str = ""

    @property
    def worse(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.verdict == "worse"]


# ------------------------------------------------------------------ judging an interval
@dataclass(frozen=True)
class RatioInterval:
    """An interval for head/base of a timing figure, and how it was obtained."""

    estimate: float
    low: float
    high: float
    how: str
    p_value: float | None = None


def judge(low: float, high: float, threshold: float, higher_is_better: bool = False) -> str:
    """Verdict on an interval [low, high] for head/base against a relative threshold,
    symmetric in ratio: +5% slower and 1/1.05 (-4.8%) faster are the same distance."""
    if not (finite(low) and finite(high)) or low <= 0 or high < low:
        return "inconclusive"
    up, down = 1 + threshold, 1 / (1 + threshold)
    if low > up:
        verdict = "worse"
    elif high < down:
        verdict = "better"
    elif low >= down and high <= up:
        return "within noise"
    else:
        return "inconclusive"
    if higher_is_better:
        verdict = "better" if verdict == "worse" else "worse"
    return verdict


def valid_samples(report: Report) -> list[float] | str:
    """timing.samples_ms when all are finite and positive; else why they cannot be used."""
    samples = getattr(report.timing, "samples_ms", None)
    if not isinstance(samples, list) or not samples:
        return "no raw samples (timing.samples_ms)"
    if not all(finite(s) and s > 0 for s in samples):
        return "samples that are not positive finite numbers"
    return [float(s) for s in samples]


def samples_needed(confidence: float) -> int:
    """The fewest samples, the same in each run, for a shift interval at ``confidence``."""
    n = 1
    while n < 1000 and trimmed_rank(n, n, confidence)[0] < 1:
        n += 1
    return n


def _two_runs_samples(base: Report, head: Report) -> tuple[list[float], list[float]] | str:
    b, h = valid_samples(base), valid_samples(head)
    problems = [f"{w} has {v}" for w, v in (("base", b), ("head", h)) if isinstance(v, str)]
    if problems:
        return "; ".join(problems)
    assert isinstance(b, list) and isinstance(h, list)
    return b, h


def median_ratio(base: Report, head: Report, confidence: float) -> RatioInterval | str:
    """Hodges-Lehmann shift of the log-latencies with its Mann-Whitney interval, as a
    ratio head/base; a string says why there is none."""
    samples = _two_runs_samples(base, head)
    if isinstance(samples, str):
        return samples
    return _log_shift_ratio(tuple(samples[0]), tuple(samples[1]), confidence)


@lru_cache(maxsize=8)  # the median, the throughput and the detectable change share it
def _log_shift_ratio(
    b: tuple[float, ...], h: tuple[float, ...], confidence: float
) -> RatioInterval | str:
    shift = _log_shift(b, h, confidence)
    if shift is None:
        return (
            f"samples: base {len(b)}, head {len(h)}; an interval at {confidence:.0%} needs "
            f"{samples_needed(confidence)} in each run"
        )
    how = (
        f"shift of the log-latencies (Hodges-Lehmann), {len(b)} vs {len(h)} samples, "
        f"{shift.method} Mann-Whitney interval"
    )
    return RatioInterval(
        estimate=math.exp(shift.estimate),
        low=math.exp(shift.low),
        high=math.exp(shift.high),
        how=how,
        p_value=mann_whitney_p(b, h),
    )


def _log_shift(
    base: Sequence[float], head: Sequence[float], confidence: float
) -> ShiftInterval | None:
    """The shift of the log-values head - base: the log of the ratio of typical values."""
    return shift_interval([math.log(v) for v in base], [math.log(v) for v in head], confidence)


def quantile_ratio(q: float) -> Callable[[Report, Report, float], RatioInterval | str]:
    """Interval for head/base of the q-quantile: each run's distribution-free interval at
    sqrt(confidence), so that both hold together with probability `confidence`; the
    ratio's bounds are then head low / base high and head high / base low."""

    def ratio(base: Report, head: Report, confidence: float) -> RatioInterval | str:
        samples = _two_runs_samples(base, head)
        if isinstance(samples, str):
            return samples
        b, h = samples
        each = math.sqrt(confidence)
        b_int, h_int = quantile_interval(b, q, each), quantile_interval(h, q, each)
        if b_int is None or h_int is None:
            need = min_quantile_samples(q, each)
            return (
                f"samples: base {len(b)}, head {len(h)}; a p{q * 100:.0f} at {confidence:.0%} "
                f"needs {need} in each run"
            )
        return RatioInterval(
            estimate=quantile(h, q) / quantile(b, q),
            low=h_int[0] / b_int[1],
            high=h_int[1] / b_int[0],
            how=f"each run's p{q * 100:.0f} interval (order statistics) at {each:.1%}",
        )

    return ratio


def throughput_ratio(base: Report, head: Report, confidence: float) -> RatioInterval | str:
    """Throughput is batch / median latency: the latency's interval, inverted and scaled
    by the ratio of the batch sizes."""
    latency = median_ratio(base, head, confidence)
    if isinstance(latency, str):
        return latency
    batches = getattr(head.timing, "batch_size", 0), getattr(base.timing, "batch_size", 0)
    scale = batches[0] / batches[1] if all(finite(b) and b > 0 for b in batches) else 1.0
    return RatioInterval(
        estimate=scale / latency.estimate,
        low=scale / latency.high,
        high=scale / latency.low,
        how="batch / latency: the latency's interval, inverted",
        p_value=latency.p_value,
    )


# ------------------------------------------------------------------ metrics of one report
@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    read: Callable[[Report], float | None]
    higher_is_better: bool = False
    # timings: the interval for head/base, from both runs' samples
    ratio: Callable[[Report, Report, float], RatioInterval | str] | None = None

    @property
    def timed(self) -> bool:
        return self.ratio is not None


def _params(r: Report) -> float | None:
    return r.model.parameters.total if r.model.parameters is not None else None


def _flops(r: Report) -> float | None:
    return r.flops.forward_total if r.flops is not None else None


def _memory(r: Report) -> float | None:
    return r.memory.inference_total_bytes if r.memory is not None else None


def _training_memory(r: Report) -> float | None:
    training = r.memory.training if r.memory is not None else None
    return training.total_bytes.get("adam") if training is not None else None


def latency_field(r: Report, name: str) -> float | None:
    """timing.latency_ms.<name>, or None when the run has no timing or lacks that field."""
    latency = getattr(r.timing, "latency_ms", None)
    value = latency.get(name) if isinstance(latency, dict) else getattr(latency, name, None)
    return float(value) if isinstance(value, (int, float)) else None


def _throughput(r: Report) -> float | None:
    value = getattr(r.timing, "throughput", None)
    return float(value) if isinstance(value, (int, float)) else None


METRICS: tuple[Metric, ...] = (
    Metric("params", "Parameters", "count", _params),
    Metric("flops", "Forward FLOPs", "flops", _flops),
    Metric("memory", "Inference memory", "bytes", _memory),
    Metric("training_memory", "Training memory (Adam)", "bytes", _training_memory),
    Metric(
        "latency_ms",
        "Latency median",
        "ms",
        lambda r: latency_field(r, "median"),
        ratio=median_ratio,
    ),
    Metric(
        "latency_p90_ms",
        "Latency p90",
        "ms",
        lambda r: latency_field(r, "p90"),
        ratio=quantile_ratio(0.9),
    ),
    Metric(
        "throughput",
        "Throughput",
        "per_s",
        _throughput,
        higher_is_better=True,
        ratio=throughput_ratio,
    ),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}


# ------------------------------------------------------------------ the diff
def diff_reports(
    base: Report,
    head: Report,
    *,
    module_threshold: float = MODULE_THRESHOLD,
    module_limit: int = MODULE_LIMIT,
    confidence: float = DEFAULT_CONFIDENCE,
    threshold: float = DEFAULT_THRESHOLD,
) -> ReportDiff:
    result = ReportDiff(
        base_name=base.model.class_name,
        head_name=head.model.class_name,
        base_source=base.model.source,
        head_source=head.model.source,
        base_created=base.environment.timestamp or base.created,
        head_created=head.environment.timestamp or head.created,
        module_threshold=module_threshold,
        confidence=confidence,
        threshold=threshold,
    )
    for metric in METRICS:
        change = compare_metric(metric, base, head, confidence, threshold)
        if change is not None:
            result.metrics.append(change)
    result.detectable = detectable_change(base, head, confidence, threshold)
    result.findings_added, result.findings_removed = compare_findings(base.findings, head.findings)
    modules = module_changes(base, head, module_threshold)
    result.modules = modules[:module_limit]
    result.modules_left_out = max(0, len(modules) - module_limit)
    times, result.times_method = time_changes(base, head, module_threshold, confidence, threshold)
    result.times = times[:module_limit]
    result.times_left_out = max(0, len(times) - module_limit)
    result.notes = comparability_notes(base, head)
    return result


def compare_metric(
    metric: Metric,
    base: Report,
    head: Report,
    confidence: float = DEFAULT_CONFIDENCE,
    threshold: float = DEFAULT_THRESHOLD,
) -> MetricChange | None:
    """None when neither run measured the metric (nothing to show)."""
    b, h = metric.read(base), metric.read(head)
    if b is None and h is None:
        return None
    change = MetricChange(metric.key, metric.label, metric.unit, b, h)
    if b is None or h is None:
        change.note = f"not measured in {'base' if b is None else 'head'}"
        return change
    if not (finite(b) and finite(h)):
        # NaN compares false with everything: left to the rules below it would read "better"
        change.note = " and ".join(w for w, v in (("base", b), ("head", h)) if not finite(v))
        change.note += " not a finite number"
        return change
    change.delta = h - b
    change.relative = (h - b) / b if b else None
    if not metric.timed:
        change.verdict = (
            _direction(change.delta, metric.higher_is_better) if h != b else "unchanged"
        )
        return change
    judge_timing(change, metric, base, head, confidence, threshold)
    return change


def judge_timing(
    change: MetricChange,
    metric: Metric,
    base: Report,
    head: Report,
    confidence: float,
    threshold: float,
) -> None:
    """Fill a timing change's interval and verdict from both runs' samples."""
    assert metric.ratio is not None and change.base is not None
    change.confidence, change.threshold = confidence, threshold
    change.noise = abs(change.base) * threshold
    if _same_samples(base, head) and change.base == change.head:
        change.verdict = "unchanged"
        return
    found = metric.ratio(base, head, confidence)
    if isinstance(found, str):
        change.verdict = "inconclusive"
        change.note = found
        return
    change.change_estimate = found.estimate - 1
    change.change_low, change.change_high = found.low - 1, found.high - 1
    change.p_value = found.p_value
    change.verdict = judge(found.low, found.high, threshold, metric.higher_is_better)
    noisy = [w for w, r in (("base", base), ("head", head)) if getattr(r.timing, "noisy", False)]
    change.note = found.how + (f"; {' and '.join(noisy)} flagged noisy" if noisy else "")


def _same_samples(base: Report, head: Report) -> bool:
    b, h = getattr(base.timing, "samples_ms", None), getattr(head.timing, "samples_ms", None)
    return isinstance(b, list) and b == h


def _direction(delta: float, higher_is_better: bool) -> str:
    return "better" if (delta > 0) == higher_is_better else "worse"


def detectable_change(
    base: Report, head: Report, confidence: float, threshold: float
) -> Detectable | None:
    """The smallest slowdown of the median this pair could call "worse".

    Shifting the head's log-samples by s shifts every pairwise difference, so the
    interval, by s: the lower bound clears log(1 + threshold) once s exceeds
    log(1 + threshold) + (estimate - low). The margin shrinks about as 1/sqrt(samples).
    """
    samples = _two_runs_samples(base, head)
    if isinstance(samples, str):
        return None
    b, h = samples
    found = _log_shift_ratio(tuple(b), tuple(h), confidence)  # median_ratio's, cached
    if isinstance(found, str):
        return None
    return make_detectable(
        math.log(found.estimate / found.low), confidence, threshold, len(b), len(h)
    )


def make_detectable(
    margin: float, confidence: float, threshold: float, base_n: int, head_n: int
) -> Detectable:
    """Detectable from the log-margin between an interval's estimate and its low end."""
    change = (1 + threshold) * math.exp(margin) - 1
    more = (1 + threshold) * math.exp(margin / math.sqrt(MORE_SAMPLES)) - 1
    text = (
        f"The smallest slowdown of the median this pair of runs can call worse is "
        f"+{change:.1%} ({confidence:.0%} confidence, threshold {threshold:.0%}; "
        f"{base_n} and {head_n} samples). More samples narrow it: {MORE_SAMPLES}x in each "
        f"run would bring it to about +{more:.1%} (raise --timing-seconds, default 1 s; a "
        f"run keeps at most {MAX_SAMPLES:,} samples and stops early once its median is "
        f"known to ±1%). Pinning threads (--threads N) and keeping other work off the "
        f"machine narrow the spread; the threshold (--threshold) is the floor."
    )
    return Detectable(change, confidence, threshold, base_n, head_n, more, text)


def single_run_detectable(
    report: Report,
    confidence: float = DEFAULT_CONFIDENCE,
    threshold: float = DEFAULT_THRESHOLD,
) -> Detectable | None:
    """What a pair of runs like this one could detect: the run against itself gives the
    interval's width when the other run has the same spread and sample count."""
    samples = valid_samples(report)
    if isinstance(samples, str):
        return None
    shift = _log_shift(samples, samples, confidence)
    if shift is None:
        return None
    n = len(samples)
    return make_detectable(shift.estimate - shift.low, confidence, threshold, n, n)


# ------------------------------------------------------------------ module and op times
def time_changes(
    base: Report,
    head: Report,
    list_threshold: float,
    confidence: float,
    threshold: float,
) -> tuple[list[TimeChange], str]:
    """Modules and ops whose time per profiled step moved by `list_threshold` or more,
    judged like the timings; the string says how (only per-step averages exist)."""
    bp, hp = base.profile, head.profile
    if bp is None or hp is None:
        return [], ""
    if bp.mode != hp.mode:
        return [], f"module and op times not compared: base profiled {bp.mode}, head {hp.mode}"
    margins = _step_margins(bp.step_us, hp.step_us, confidence)
    on_device = bp.device.startswith("cuda") and hp.device.startswith("cuda")
    op_field = "device_self_us" if on_device else "self_us"
    step = max(_mean(bp.step_us), _mean(hp.step_us))
    rows: list[TimeChange] = []
    for kind, b_times, h_times in (
        ("module", _module_times(bp), _module_times(hp)),
        ("op", _op_times(bp, op_field), _op_times(hp, op_field)),
    ):
        for name in dict.fromkeys([*b_times, *h_times]):
            row = _time_row(kind, name, b_times.get(name), h_times.get(name), step, list_threshold)
            if row is not None:
                _judge_time(row, margins, threshold)
                rows.append(row)
    rows.sort(key=lambda r: (-_moved_us(r), r.kind, r.name))
    steps = f"base {len(bp.step_us)}, head {len(hp.step_us)} profiled steps"
    how = (
        f"Module and op times are averages per profiled step ({steps}; modules: the "
        f"scope's wall time, ops: {'self CUDA' if on_device else 'self CPU'} time). No "
        f"per-call samples exist, so each is judged with the width of the interval for "
        f"the change of the profiled steps' wall time: a module or op is assumed to vary, "
        f"relatively, no more than the whole step. Listed: those holding "
        f"{TIME_MIN_SHARE:.0%} of a step or more that moved by {list_threshold:.0%} or more."
    )
    if isinstance(margins, str):
        how += f" Not judged: {margins}."
    return rows, how


def _moved_us(row: TimeChange) -> float:
    moved = abs((row.head_us or 0) - (row.base_us or 0))
    return moved if math.isfinite(moved) else 0.0


def _mean(values: Sequence[float]) -> float:
    good = [v for v in values if finite(v)]
    return sum(good) / len(good) if good else 0.0


def _step_margins(
    base_steps: Sequence[float], head_steps: Sequence[float], confidence: float
) -> tuple[float, float] | str:
    """(estimate - low, high - estimate) of the log-shift of the profiled step times."""
    steps = [base_steps, head_steps]
    if not all(s and all(finite(v) and v > 0 for v in s) for s in steps):
        return "a profile has no valid step times"
    shift = _log_shift(base_steps, head_steps, confidence)
    if shift is None:
        need = samples_needed(confidence)
        return (
            f"an interval at {confidence:.0%} needs {need} profiled steps in each run "
            f"(--profile-steps 0,1,{need})"
        )
    return shift.estimate - shift.low, shift.high - shift.estimate


def _module_times(profile: Any) -> dict[str, tuple[str, float]]:
    # "" is the model itself: its time is the step, judged as the latency
    return {m.name: (m.type, m.total_us) for m in profile.modules if m.name}


def _op_times(profile: Any, name: str) -> dict[str, tuple[str, float]]:
    return {o.name: (o.category, getattr(o, name)) for o in profile.ops_by_name}


def _time_row(
    kind: str,
    name: str,
    b: tuple[str, float] | None,
    h: tuple[str, float] | None,
    step_us: float,
    list_threshold: float,
) -> TimeChange | None:
    b_us, h_us = (b[1] if b else None), (h[1] if h else None)
    values = [v for v in (b_us, h_us) if v is not None]
    if not all(finite(v) and v >= 0 for v in values):
        return TimeChange(kind, name, (h or b or ("", 0))[0], b_us, h_us, note="not a finite time")
    if step_us <= 0 or max(values, default=0) < TIME_MIN_SHARE * step_us:
        return None
    row = TimeChange(kind, name, (h or b or ("", 0))[0], b_us, h_us)
    if b_us is None or h_us is None:
        row.note = f"only in {'head' if b_us is None else 'base'}"
        return row
    if b_us <= 0 or h_us <= 0:
        return None if b_us == h_us else row
    row.relative = h_us / b_us - 1
    return row if abs(row.relative) >= list_threshold else None


def _judge_time(row: TimeChange, margins: tuple[float, float] | str, threshold: float) -> None:
    if row.relative is None or row.note:
        return
    if isinstance(margins, str):
        row.verdict, row.note = "inconclusive", margins
        return
    ratio = 1 + row.relative
    low, high = ratio * math.exp(-margins[0]), ratio * math.exp(margins[1])
    row.change_low, row.change_high = low - 1, high - 1
    row.verdict = judge(low, high, threshold)


def _finding_key(f: Finding) -> tuple[str, str]:
    # Titles carry numbers that move between runs; the rule and its target identify a finding.
    return f.rule, f.target if f.target is not None else f.title


def compare_findings(
    base: list[Finding], head: list[Finding]
) -> tuple[list[FindingRef], list[FindingRef]]:
    base_keys = {_finding_key(f) for f in base}
    head_keys = {_finding_key(f) for f in head}
    added = [_ref(f) for f in head if _finding_key(f) not in base_keys]
    removed = [_ref(f) for f in base if _finding_key(f) not in head_keys]
    return added, removed


def _ref(f: Finding) -> FindingRef:
    return FindingRef(f.rule, f.severity, f.title, f.target)


def module_costs(report: Report) -> dict[str, dict[str, Any]]:
    """name -> {type, flops, params} for every module either table knows."""
    out: dict[str, dict[str, Any]] = {}
    if report.summary is not None:
        for row in report.summary.layers:
            if row.name:
                out.setdefault(row.name, {"type": row.type})["params"] = row.params
    if report.flops is not None:
        for m in report.flops.by_module:
            if m.name:
                out.setdefault(m.name, {"type": m.type})["flops"] = m.forward
    return out


def module_changes(base: Report, head: Report, threshold: float) -> list[ModuleChange]:
    """Modules whose FLOPs or parameters moved by `threshold` or more, largest first."""
    b_costs, h_costs = module_costs(base), module_costs(head)
    totals = {
        "flops": max(_flops(base) or 0, _flops(head) or 0),
        "params": max(_params(base) or 0, _params(head) or 0),
    }
    changes = []
    for name in dict.fromkeys([*b_costs, *h_costs]):
        b_row, h_row = b_costs.get(name, {}), h_costs.get(name, {})
        for metric in ("flops", "params"):
            b, h = b_row.get(metric), h_row.get(metric)
            if b is None and h is None or b == h:
                continue
            delta = (h or 0) - (b or 0)
            relative = delta / b if b else None
            big_enough = abs(delta) >= MODULE_MIN_SHARE * totals[metric]
            if big_enough and (relative is None or abs(relative) >= threshold):
                kind = h_row.get("type") or b_row.get("type") or ""
                changes.append(ModuleChange(name, kind, metric, b, h, delta, relative))
    changes.sort(key=lambda c: (-abs(c.delta) / max(totals[c.metric], 1), c.name))
    return changes


def comparability_notes(base: Report, head: Report) -> list[str]:
    """Differences in how the two runs were made that change what their figures mean."""
    notes = []
    pairs = [
        ("device", base.model.device, head.model.device),
        ("torch", base.environment.torch_version, head.environment.torch_version),
        ("machine", base.environment.device_name, head.environment.device_name),
        ("torch threads", base.environment.torch_threads, head.environment.torch_threads),
    ]
    for what, b, h in pairs:
        if b and h and b != h:
            notes.append(f"{what} differs: base {b}, head {h}; timings may not compare")
    b_inputs = [(t.shape, t.dtype) for t in base.model.inputs]
    h_inputs = [(t.shape, t.dtype) for t in head.model.inputs]
    if b_inputs and h_inputs and b_inputs != h_inputs:
        notes.append("inputs differ between the runs: FLOPs, memory and latency follow them")
    return notes


def parse_fraction(text: str, flag: str, low: float, high: float) -> float:
    """'5%' or '0.05' -> 0.05, within [low, high); a UsageError naming the flag otherwise.
    A plain number of 1 or more is refused: '--threshold 5' would mean 500%."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1]) / 100 if percent else float(raw)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a number or a percentage") from None
    if not percent and value >= 1:
        raise UsageError(f"{flag}: {text!r} is ambiguous: write {raw}% or {value / 100:g}")
    if not (math.isfinite(value) and low <= value < high):
        raise UsageError(
            f"{flag}: {text!r} is outside {low:g} to {high:g} (or {low:.0%} to {high:.0%})"
        )
    return value
