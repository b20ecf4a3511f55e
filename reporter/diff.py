"""Compare two Reports: what changed between a base run and a head run.

Pure: Reports in, a ReportDiff out. Counts (parameters, FLOPs, memory estimates) are
deterministic, so any change is real. Timings are not: a latency change is only called
worse or better when it is larger than the spread both runs measured, so noise between two
runs of the same model is reported as noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reporter.report import Finding, Report

MODULE_THRESHOLD = 0.10  # per-module change shown when it moves by 10% or more ...
MODULE_MIN_SHARE = 0.005  # ... and the module holds at least 0.5% of the model's total
MODULE_LIMIT = 25
NOISE_FLOOR = 0.01  # timing changes under 1% are never called a regression
NO_SPREAD_TOLERANCE = 0.05  # when neither run recorded a spread, assume 5%


@dataclass
class MetricChange:
    key: str  # stable id, also the budget name: "params", "flops", "latency_ms", ...
    label: str
    unit: str  # "count", "flops", "bytes", "ms", "per_s"
    base: float | None
    head: float | None
    delta: float | None = None
    relative: float | None = None  # delta / base
    # "worse", "better", "within noise", "unchanged", "inconclusive" (a run flagged itself
    # noisy, or a tail figure from too few samples) or "not compared" (measured in one run only)
    verdict: str = "not compared"
    noise: float | None = None  # the band (in the metric's unit) a timing change must exceed
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

    @property
    def worse(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.verdict == "worse"]


# p90 is the 10% tail: below 20 samples it rests on one or two of them.
P90_MIN_SAMPLES = 20


# ------------------------------------------------------------------ metrics of one report
@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    read: Callable[[Report], float | None]
    higher_is_better: bool = False
    timed: bool = False  # measured with noise: judged against the runs' spread
    min_samples: int = 0  # a tail figure needs this many samples in both runs to be judged


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
    Metric("latency_ms", "Latency median", "ms", lambda r: latency_field(r, "median"), timed=True),
    Metric(
        "latency_p90_ms",
        "Latency p90",
        "ms",
        lambda r: latency_field(r, "p90"),
        timed=True,
        min_samples=P90_MIN_SAMPLES,
    ),
    Metric("throughput", "Throughput", "per_s", _throughput, higher_is_better=True, timed=True),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}


# ------------------------------------------------------------------ the diff
def diff_reports(
    base: Report,
    head: Report,
    *,
    module_threshold: float = MODULE_THRESHOLD,
    module_limit: int = MODULE_LIMIT,
) -> ReportDiff:
    result = ReportDiff(
        base_name=base.model.class_name,
        head_name=head.model.class_name,
        base_source=base.model.source,
        head_source=head.model.source,
        base_created=base.environment.timestamp or base.created,
        head_created=head.environment.timestamp or head.created,
        module_threshold=module_threshold,
    )
    spread = timing_spread(base), timing_spread(head)
    noisy = noisy_runs(base, head)
    for metric in METRICS:
        change = compare_metric(metric, base, head, spread, noisy)
        if change is not None:
            result.metrics.append(change)
    result.findings_added, result.findings_removed = compare_findings(base.findings, head.findings)
    modules = module_changes(base, head, module_threshold)
    result.modules = modules[:module_limit]
    result.modules_left_out = max(0, len(modules) - module_limit)
    result.notes = comparability_notes(base, head)
    return result


def compare_metric(
    metric: Metric,
    base: Report,
    head: Report,
    spread: tuple[float | None, float | None],
    noisy: str = "",
) -> MetricChange | None:
    """None when neither run measured the metric (nothing to show). `noisy` names a run
    whose timing flagged itself noisy: its timings are reported but not judged."""
    # NaN compares false with everything: never "better", never "worse", only unmeasured.
    b, h = _finite(metric.read(base)), _finite(metric.read(head))
    if b is None and h is None:
        return None
    change = MetricChange(metric.key, metric.label, metric.unit, b, h)
    if b is None or h is None:
        change.note = f"not measured in {'base' if b is None else 'head'}"
        return change
    change.delta = h - b
    change.relative = (h - b) / b if b else None
    if not metric.timed:
        change.verdict = (
            _direction(change.delta, metric.higher_is_better) if h != b else "unchanged"
        )
        return change
    band, how = noise_band(spread)
    change.noise = abs(b) * band
    change.note = how
    if h == b:
        change.verdict = "unchanged"
    elif noisy:
        change.verdict = "inconclusive"
        change.note = noisy
    elif few := too_few_samples(metric, base, head):
        change.verdict = "inconclusive"
        change.note = few
    elif not _beyond(b, h, band):
        change.verdict = "within noise"
    else:
        change.verdict = _direction(change.delta, metric.higher_is_better)
    return change


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _beyond(base: float, head: float, band: float) -> bool:
    """Compare as a ratio, so a latency and the throughput derived from it agree: 2x slower
    and half the throughput are the same distance from the base."""
    if base <= 0 or head <= 0:
        return abs(head - base) > abs(base) * band
    ratio = head / base
    return ratio > 1 + band or ratio < 1 / (1 + band)


def noisy_runs(base: Report, head: Report) -> str:
    """Why the timings cannot be judged: a run whose timing stage flagged itself noisy."""
    reasons = []
    for which, report in (("base", base), ("head", head)):
        if getattr(report.timing, "noisy", False):
            why = getattr(report.timing, "noise_reason", "") or "flagged noisy"
            reasons.append(f"{which} run noisy: {why}")
    return "; ".join(reasons)


def _direction(delta: float, higher_is_better: bool) -> str:
    return "better" if (delta > 0) == higher_is_better else "worse"


def sample_count(report: Report) -> int:
    samples = getattr(report.timing, "samples_ms", None)
    return len(samples) if isinstance(samples, list) else 0


def too_few_samples(metric: Metric, base: Report, head: Report) -> str:
    """Why a tail figure cannot be judged: p90 of a handful of samples is one sample."""
    counts = {"base": sample_count(base), "head": sample_count(head)}
    short = [f"{which} {n}" for which, n in counts.items() if n < metric.min_samples]
    if not short:
        return ""
    return (
        f"samples: {', '.join(short)}; a {metric.label.split()[-1]} needs "
        f"{metric.min_samples} in each run to be compared"
    )


def timing_spread(report: Report) -> float | None:
    """One run's spread as a fraction of its median latency, from whatever it recorded:
    the interquartile range, else the coefficient of variation, else p90 - median."""
    median = latency_field(report, "median")
    if not median:
        return None
    # 0.0 is what an older timing section stores when it did not compute the figure.
    iqr = latency_field(report, "iqr")
    if iqr:
        return iqr / median
    cv = latency_field(report, "cv")
    if cv:
        return cv
    p90 = latency_field(report, "p90")
    if p90 is not None:
        return max(p90 - median, 0.0) / median
    return None


def noise_band(spread: tuple[float | None, float | None]) -> tuple[float, str]:
    """The relative change a timing must exceed to count: the wider spread of the two runs
    (beyond it their interquartile ranges barely overlap), never under 1%; 5% if neither
    run recorded a spread."""
    known = [s for s in spread if s is not None]
    if not known:
        return NO_SPREAD_TOLERANCE, f"no spread recorded; ±{NO_SPREAD_TOLERANCE:.0%} assumed"
    relative = max(max(known), NOISE_FLOOR)
    return relative, f"spread of the runs ±{relative:.1%}"


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
