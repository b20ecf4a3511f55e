"""Rules that read the deploy section: export, compile and ONNX readiness."""

from __future__ import annotations

from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.report.enums import Status
from reporter.rules.registry import evidence, numbered, rule


@rule(
    "export-fails",
    "torch.export fails on the sample input",
    reads=["deploy"],
    doc="torch.export is the entry point for AOTInductor, ExecuTorch and most serving "
    "stacks; a model it cannot capture needs changes before deployment.",
)
def export_fails(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    check = report.deploy.export
    if check.status != Status.FAILED:
        return []
    return [
        Finding(
            rule="export-fails",
            severity="warning",
            title="torch.export cannot capture the model",
            evidence=evidence(error=check.error, location=check.location or None),
            recommendation="Remove data-dependent Python control flow (if on tensor values, "
            ".item(), .tolist()) from forward, or express it with torch.cond / torch.where.",
            snippet="y = torch.where(cond, a, b)  # instead of: if cond.item(): ...",
            target=check.location or None,
        )
    ]


@rule(
    "graph-breaks",
    "torch.compile splits the model into several graphs",
    reads=["deploy"],
    thresholds={"deploy.max_graph_breaks": 0},
    doc="Each graph break returns to Python, stops fusion across it and adds launch "
    "overhead; mode='reduce-overhead' (CUDA graphs) needs a single graph.",
)
def graph_breaks(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    breaks = report.deploy.graph_breaks
    if len(breaks) <= th["deploy.max_graph_breaks"]:
        return []
    return [
        Finding(
            rule="graph-breaks",
            severity="warning",
            title=f"torch.compile hits {len(breaks)} distinct graph break(s)",
            evidence=evidence(
                **numbered("break", (f"{b.reason} ({b.location})" for b in breaks[:5]))
            ),
            recommendation="Fix each break at the line shown: avoid .item()/print/numpy in "
            "forward, or move such code out of the compiled region.",
            snippet="torch._dynamo.explain(model)(x)  # lists each break and its line",
            target=breaks[0].location or None,
        )
    ]


@rule(
    "onnx-export-fails",
    "ONNX export fails",
    reads=["deploy"],
    doc="ONNX Runtime and TensorRT take ONNX; an export failure blocks those paths.",
)
def onnx_fails(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    check = report.deploy.onnx
    if check.status != Status.FAILED:
        return []
    return [
        Finding(
            rule="onnx-export-fails",
            severity="warning",
            title="ONNX export fails",
            evidence=evidence(error=check.error, location=check.location or None),
            recommendation="Check the failing op against the ONNX opset, or export with "
            "torch.onnx.export(..., dynamo=True).",
        )
    ]


@rule(
    "measured-speedup",
    "A fix measured faster with unchanged outputs",
    reads=["experiments"],
    thresholds={"experiments.min_speedup": 1.05},
    doc="From --experiments: the fix was applied to a copy of the model and timed against "
    "the unchanged model in the same process; the whole quartile range must clear the "
    "threshold and the outputs must match.",
)
def measured_speedup(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    findings = []
    for e in report.experiments.experiments:
        if e.status != "measured" or not e.outputs_match or e.speedup_low is None:
            continue
        if e.speedup_low < th["experiments.min_speedup"]:
            continue
        findings.append(
            Finding(
                rule="measured-speedup",
                severity="warning" if e.speedup_low >= 1.2 else "info",
                title=f"{e.title}: measured {e.speedup:.2f}× faster here, same outputs",
                evidence=evidence(
                    before=f"{e.baseline_ms:.3f} ms",
                    after=f"{e.variant_ms:.3f} ms",
                    speedup_range=f"{e.speedup_low:.2f}–{e.speedup_high:.2f}×",
                    max_output_difference=f"{e.max_abs_error:.2e}",
                ),
                recommendation=f"Apply it: {e.title}.",
                snippet=e.snippet,
                target=e.name,
            )
        )
    return findings
