"""Rules that read the deploy section: export, compile and ONNX readiness."""

from __future__ import annotations

from reporter.report import Finding, Report
from reporter.rules.registry import evidence, rule


@rule(
    "export-fails",
    "torch.export fails on the sample input",
    reads=["deploy"],
    doc="torch.export is the entry point for AOTInductor, ExecuTorch and most serving "
    "stacks; a model it cannot capture needs changes before deployment.",
)
def export_fails(report: Report, th: dict[str, float]) -> list[Finding]:
    check = report.deploy.export
    if check.status != "failed":
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
def graph_breaks(report: Report, th: dict[str, float]) -> list[Finding]:
    breaks = report.deploy.graph_breaks
    if len(breaks) <= th["deploy.max_graph_breaks"]:
        return []
    return [
        Finding(
            rule="graph-breaks",
            severity="warning",
            title=f"torch.compile hits {len(breaks)} distinct graph break(s)",
            evidence={
                f"break {i + 1}": f"{b.reason} ({b.location})" for i, b in enumerate(breaks[:5])
            },
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
def onnx_fails(report: Report, th: dict[str, float]) -> list[Finding]:
    check = report.deploy.onnx
    if check.status != "failed":
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
