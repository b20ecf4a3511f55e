"""The deployment choice: each measured precision or runtime judged against the user's
tolerances, and the fastest one inside them recommended."""

from __future__ import annotations

from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.report.experiments import Experiment
from reporter.rules.registry import evidence, rule
from reporter.units import nbytes, percent

FASTER = "faster, within tolerance"
NOT_FASTER = "within tolerance, not measurably faster"
OUTSIDE = "outside tolerance"


def verdict(e: Experiment, th: dict[str, float]) -> str:
    """One deployment variant against the tolerances: its error first, then its speed."""
    if e.status != "measured":
        return e.status
    problems = []
    if e.max_rel_error is None:
        problems.append("outputs not comparable")
    elif e.max_rel_error > th["deploy.max_rel_error"]:
        problems.append(f"max relative error {e.max_rel_error:.2g}")
    if e.top1_agreement is not None and e.top1_agreement < th["deploy.min_top1_agreement"]:
        problems.append(f"top-1 agreement {percent(e.top1_agreement)}")
    if e.accuracy_delta is not None and -e.accuracy_delta > th["deploy.max_accuracy_drop"]:
        problems.append(f"accuracy {e.accuracy_delta:+.2%}")
    if problems:
        return f"{OUTSIDE} ({'; '.join(problems)})"
    return FASTER if e.clearly_faster else NOT_FASTER


@rule(
    "deployment-choice",
    "The fastest deployment variant inside the output tolerances",
    reads=["experiments"],
    thresholds={
        "deploy.max_rel_error": 0.05,
        "deploy.min_top1_agreement": 0.99,
        "deploy.max_accuracy_drop": 0.01,
    },
    doc="Each deployment variant measured by --experiments (bf16 and fp16, int8 and int4 "
    "quantisation with torchao, ONNX Runtime, batch-norm folding) gets a verdict: outside "
    "tolerance when its largest output difference relative to the output's largest "
    "magnitude exceeds `deploy.max_rel_error`, when fewer rows than "
    "`deploy.min_top1_agreement` keep their top-1 class, or when eval_batches() accuracy "
    "drops by more than `deploy.max_accuracy_drop`; else faster when even the quartile "
    "range of its speedup is above 1. The fastest variant inside the tolerances is "
    "recommended with its evidence.",
)
def deployment_choice(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    variants = [e for e in report.experiments.experiments if e.deployment]
    for e in variants:
        e.verdict = verdict(e, th)  # kept in the report: the table shows the same judgement
    good = [e for e in variants if e.verdict == FASTER]
    if not good:
        return []
    best = max(good, key=lambda e: e.speedup or 0.0)
    size = (
        f"{nbytes(best.size_before_bytes)} → {nbytes(best.size_after_bytes)}"
        if best.size_before_bytes and best.size_after_bytes
        else None
    )
    return [
        Finding(
            rule="deployment-choice",
            severity="info",
            title=f"Ship with {best.title}: {best.speedup:.2f}× faster "
            f"({best.speedup_low:.2f}–{best.speedup_high:.2f}×) within tolerance",
            evidence=evidence(
                variant=best.name,
                latency=f"{best.baseline_ms:.3f} ms → {best.variant_ms:.3f} ms",
                max_rel_error=None if best.max_rel_error is None else f"{best.max_rel_error:.2g}",
                top1_agreement=None
                if best.top1_agreement is None
                else percent(best.top1_agreement),
                accuracy_delta=None
                if best.accuracy_delta is None
                else f"{best.accuracy_delta:+.2%}",
                weights=size,
                others_within_tolerance=", ".join(e.name for e in good if e is not best) or None,
            ),
            recommendation="The fastest variant whose outputs stay inside the tolerances "
            "(`deploy.*` thresholds); check it on your own evaluation data before shipping.",
            snippet=best.snippet,
        )
    ]
