"""Rules that read a training step's memory timeline (--train): what fills the peak."""

from __future__ import annotations

from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.report.memory_timeline import MemoryTimeline
from reporter.rules.registry import evidence, rule
from reporter.units import nbytes, percent


def _timeline(report: Report) -> MemoryTimeline | None:
    """The recorded training step's timeline, when it has a peak to share out."""
    t = report.memory.timeline if report.memory is not None else None
    return t if t is not None and t.peak_bytes else None


@rule(
    "activations-dominate-peak",
    "Activations fill most of a training step's peak memory",
    reads=["memory"],
    thresholds={"memory.activation_peak_share": 0.5},
    doc="Activations (and autograd's saved detail) take at least this share of the peak of "
    "the recorded training step. Activation checkpointing of the modules holding the most "
    "recomputes them in backward instead of keeping them; the finding names those modules "
    "and the bytes they hold as forward ends (what checkpointing them could save, less the "
    "inputs each keeps). A smaller batch shrinks them too.",
)
def activations_dominate(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    t = _timeline(report)
    if t is None:
        return []
    held = t.at_peak_by_category.get("activation", 0) + t.at_peak_by_category.get(
        "autograd_detail", 0
    )
    if held / t.peak_bytes < th["memory.activation_peak_share"]:
        return []
    modules = [(m, b) for m, b in t.activations_by_module.items() if not m.startswith("(")][:3]
    saved = sum(b for _, b in modules)
    names = ", ".join(f"`{m}` {nbytes(b)}" for m, b in modules) or "none named"
    first = modules[0][0] if modules else None
    return [
        Finding(
            rule="activations-dominate-peak",
            severity="warning",
            title=f"Activations are {percent(held / t.peak_bytes)} of the training step's "
            f"peak ({nbytes(t.peak_bytes)})",
            evidence=evidence(
                peak=nbytes(t.peak_bytes),
                activations_at_peak=nbytes(held),
                peak_phase=t.peak_phase or None,
                largest_holders=names,
                checkpointing_could_save=f"up to {nbytes(saved)}" if modules else None,
            ),
            recommendation="Checkpoint the modules that hold the most activations "
            "(torch.utils.checkpoint), or train with a smaller batch.",
            snippet="from torch.utils.checkpoint import checkpoint\n"
            f"# in the parent's forward:\nx = checkpoint(self.{first or 'block'}, x, use_reentrant=False)",
            target=first,
        )
    ]


@rule(
    "optimizer-state-dominates-peak",
    "Optimizer state fills a large share of a training step's peak memory",
    reads=["memory"],
    thresholds={"memory.optimizer_peak_share": 0.4},
    doc="The optimizer's state (AdamW: two copies of every trainable parameter) takes at "
    "least this share of the peak. A lighter optimizer (SGD with momentum: one copy; "
    "Adafactor: factored), 8-bit optimizer state, or sharding it across ranks (FSDP, "
    "ZeRO) reduces it.",
)
def optimizer_dominates(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    t = _timeline(report)
    if t is None:
        return []
    state = t.at_peak_by_category.get("optimizer_state", 0)
    if state / t.peak_bytes < th["memory.optimizer_peak_share"]:
        return []
    return [
        Finding(
            rule="optimizer-state-dominates-peak",
            severity="info",
            title=f"{t.optimizer or 'Optimizer'} state is {percent(state / t.peak_bytes)} of "
            f"the training step's peak ({nbytes(state)})",
            evidence=evidence(peak=nbytes(t.peak_bytes), optimizer_state=nbytes(state)),
            recommendation="Use a lighter optimizer (SGD with momentum keeps one copy, "
            "Adafactor a factored one), 8-bit optimizer state, or shard the state across "
            "ranks (FSDP, ZeRO).",
            snippet="optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)",
        )
    ]


@rule(
    "temporary-memory-spike",
    "One op's temporary buffer makes the training step's peak",
    reads=["memory"],
    thresholds={"memory.spike_share": 0.25},
    doc="A single tensor that is neither a parameter, a gradient, optimizer state nor an "
    "activation (a workspace, an intermediate the profiler could not categorise) holds "
    "at least this share of the peak. The op that made it is named: a fused or in-place "
    "variant (the optimizer's foreach=False or fused=True, a chunked loss) avoids it.",
)
def temporary_spike(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    t = _timeline(report)
    if t is None:
        return []
    temporary = [x for x in t.largest_at_peak if x.category in ("temporary", "unknown")]
    if not temporary or temporary[0].bytes / t.peak_bytes < th["memory.spike_share"]:
        return []
    x = temporary[0]
    total = sum(y.bytes for y in temporary)
    return [
        Finding(
            rule="temporary-memory-spike",
            severity="info",
            title=f"`{x.op or 'an op'}` holds a {nbytes(x.bytes)} temporary at the training "
            f"step's peak ({percent(x.bytes / t.peak_bytes)})",
            evidence=evidence(
                op=x.op or None,
                module=x.module or None,
                bytes=nbytes(x.bytes),
                temporaries_at_peak=nbytes(total),
                peak_phase=t.peak_phase or None,
            ),
            recommendation="Where the spike is in the optimizer, fused=True (or "
            "foreach=False) avoids its per-step temporaries; elsewhere, compute the op in "
            "chunks or in place.",
            snippet="optimizer = torch.optim.AdamW(model.parameters(), fused=True)",
            target=x.module or None,
        )
    ]
