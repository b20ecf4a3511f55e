"""Rules that read the roofline section: time spent far from what the hardware allows."""

from __future__ import annotations

from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.rules.launch import compile_snippet
from reporter.rules.registry import evidence, rule
from reporter.units import percent


def _on_gpu(report: Report) -> bool:
    return report.model.device.startswith("cuda")


@rule(
    "overhead-bound",
    "Most of the forward is overhead, not compute or memory traffic",
    reads=["roofline"],
    thresholds={"roofline.overhead_share": 0.5},
    doc="Time in ops whose work is below the cost of one call (dispatch, a kernel launch), "
    "plus time between ops (Python, hooks, the allocator), against the forward's time. "
    "Faster arithmetic or memory does not help such a model: fewer, larger ops do (a "
    "larger batch, torch.compile; CUDA graphs on a GPU).",
)
def overhead_bound(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    model = report.roofline.model
    total = sum(model.regime_ms.values())
    overhead = model.regime_ms.get("overhead", 0.0)
    if not total or overhead / total < th["roofline.overhead_share"]:
        return []
    ops = [o for o in report.roofline.ops if o.bound == "overhead"]
    gpu = _on_gpu(report)
    return [
        Finding(
            rule="overhead-bound",
            severity="warning",
            title=f"{percent(overhead / total)} of the forward is overhead "
            f"({overhead:.3f} ms at stake)",
            evidence=evidence(
                overhead_time=f"{overhead:.3f} ms",
                between_ops=None
                if model.outside_ops_ms is None
                else f"{model.outside_ops_ms:.3f} ms",
                overhead_bound_ops=f"{sum(o.calls for o in ops):,} calls",
                forward_time=f"{total:.3f} ms",
                speed_of_light=f"{model.speed_of_light_ms:.3f} ms",
            ),
            recommendation="Make fewer, larger ops: a larger batch, torch.compile"
            + (", CUDA graphs (torch.compile(mode='reduce-overhead'))." if gpu else "."),
            snippet=compile_snippet(gpu),
        )
    ]


@rule(
    "fusion-candidate",
    "Consecutive memory-bound ops that a fused kernel would run in one pass",
    reads=["roofline"],
    thresholds={"roofline.chain_share": 0.05},
    doc="A run of memory-bound ops in one module reads and writes every intermediate "
    "tensor; one fused kernel moves only the first inputs and the last outputs. Flagged "
    "when the time above that fused bound is at least this share of the op time.",
)
def fusion_candidate(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    op_ms = report.roofline.model.op_time_ms
    findings = []
    for chain in report.roofline.chains:
        at_stake_ms = (chain.time_us - chain.fused_bound_us) / 1000
        if not op_ms or at_stake_ms / op_ms < th["roofline.chain_share"]:
            continue
        where = chain.module or "the model"
        findings.append(
            Finding(
                rule="fusion-candidate",
                severity="info",
                title=f"{len(chain.ops)} memory-bound ops in a row in `{where}` "
                f"({at_stake_ms:.3f} ms at stake)",
                evidence=evidence(
                    module=where,
                    ops=" → ".join(chain.ops),
                    time=f"{chain.time_us / 1000:.3f} ms",
                    fused_bound=f"{chain.fused_bound_us / 1000:.3f} ms",
                    share_of_op_time=percent(at_stake_ms / op_ms),
                ),
                recommendation="Fuse them: torch.compile generates one kernel for a chain "
                "of elementwise ops and reductions.",
                snippet=f"model.{chain.module} = torch.compile(model.{chain.module})"
                if chain.module
                else "model = torch.compile(model)",
                target=chain.module or None,
            )
        )
        if len(findings) == 3:
            break
    return findings


@rule(
    "compute-inefficient",
    "Compute-bound ops far below the compute ceiling",
    reads=["roofline"],
    thresholds={"roofline.low_efficiency": 0.3, "roofline.op_share": 0.1},
    doc="A compute-bound op (matrix product, convolution) reaching less than this share of "
    "the measured peak, and taking at least `roofline.op_share` of the op time. Usual "
    "causes: the dtype (float32 where bf16 or TF32 would do), the layout (channels_last "
    "for convolutions), sizes that are not multiples of 8 or 16, or shapes too small to "
    "fill the machine.",
)
def compute_inefficient(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    section = report.roofline
    total = sum(o.time_us for o in section.ops)
    slow = [
        o
        for o in section.ops
        if o.bound == "compute"
        and o.efficiency < th["roofline.low_efficiency"]
        and total
        and o.time_us / total >= th["roofline.op_share"]
    ]
    gpu = _on_gpu(report)
    findings = []
    for o in slow[:3]:
        conv = "convolution" in o.name
        lost_ms = (o.time_us - o.bound_us) / 1000
        findings.append(
            Finding(
                rule="compute-inefficient",
                severity="warning",
                title=f"`{o.name}` runs at {percent(o.efficiency)} of the compute ceiling "
                f"({lost_ms:.3f} ms at stake)",
                evidence=evidence(
                    op=o.name,
                    shapes=o.shapes,
                    module=o.module,
                    time=f"{o.time_us / 1000:.3f} ms",
                    roofline_time=f"{o.bound_us / 1000:.3f} ms",
                    achieved=f"{o.achieved_flops / 1e9:,.1f} GFLOP/s",
                    peak=f"{section.machine.peak_flops / 1e9:,.1f} GFLOP/s ({section.machine.dtype})",
                ),
                recommendation=(
                    "Try a lower precision (bf16 autocast"
                    + (", or TF32 for float32 matrix products" if gpu else "")
                    + ")"
                    + (", channels_last memory format" if conv else "")
                    + ", and sizes that are multiples of 8 (16 for bf16); a larger batch "
                    "fills the machine better."
                ),
                snippet="with torch.autocast(device_type=%r, dtype=torch.bfloat16):\n"
                "    out = model(x)" % ("cuda" if gpu else "cpu"),
                target=o.module.split(" (+")[0] or None,
            )
        )
    return findings
