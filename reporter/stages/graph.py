"""Graph stage: the module graph of one real forward pass, drawn by Graphviz.

Options (RunOptions.stage_options["graph"]): depth (--graph-depth; default: the deepest that
fits the node budget), format (--graph-format svg|png|pdf; svg and graph.dot are always
written), budget (nodes, default 60), metric (parameters or FLOPs; default FLOPs when the
flops stage ran, else parameters; time when a profile section is at hand).
"""

from __future__ import annotations

import time
from typing import Any

from reporter import meta_attention
from reporter.errors import UsageError
from reporter.graph.build import DEFAULT_BUDGET, build_graph
from reporter.graph.dot import DotMissing, dot_path, inline_svg, render
from reporter.graph.recolour import module_times_ms
from reporter.option_schema import BY_KEY, default
from reporter.output import write_atomic
from reporter.report.graph import GraphSection
from reporter.stages.context import SkipStage, StageContext

FORMATS = BY_KEY["graph_format"].choices or ()
METRICS = ("parameters", "FLOPs", "time")


def options(ctx: StageContext) -> dict[str, Any]:
    get = ctx.options.stage_option
    depth = get("graph", "depth", None)
    fmt = str(get("graph", "format", default("graph_format"))).lower()
    if fmt not in FORMATS:
        raise UsageError(f"--graph-format {fmt}: use one of {', '.join(FORMATS)}")
    if depth is not None and int(depth) < 1:
        raise UsageError(f"--graph-depth {depth}: give 1 or more")
    return {
        "depth": None if depth is None else int(depth),
        "format": fmt,
        "budget": int(get("graph", "budget", DEFAULT_BUDGET)),
        "metric": get("graph", "metric", None),
    }


def cost_metric(ctx: StageContext, asked: str | None) -> tuple[str, dict[str, float]]:
    """Measured time when a profile is at hand, else FLOPs per module, else parameters.

    The profile stage runs after this one, so a normal run colours by FLOPs; time comes
    from `reporter.graph.recolour.colour_by_time` on a finished report.
    """
    if asked not in (None, *METRICS):
        raise UsageError(f"graph metric {asked}: use one of {', '.join(METRICS)}")
    times = module_times_ms(ctx.sections.get("profile"))
    if asked in (None, "time") and times:
        return "time", times
    flops = ctx.sections.get("flops")
    by_module = getattr(flops, "by_module", None) or []
    if asked in (None, "FLOPs") and by_module:
        return "FLOPs", {m.name: float(m.forward) for m in by_module}
    return "parameters", {}


def wanted(ctx: StageContext) -> bool:
    """Whether this run will draw the graph: then the shared inference pass records it."""
    if "graph" not in ctx.options.stages or "graph" in ctx.sections:
        return False
    try:
        dot_path()
    except DotMissing:
        return False
    return True


def shared_recording(ctx: StageContext) -> Any:
    """The recording the shared inference pass made, when it ran and made one. It is
    handed over, not kept: a model of thousands of blocks makes a large one."""
    done = ctx.cache.get("inference_pass")
    recording = getattr(done, "recording", None)
    if recording is not None:
        done.recording = None
    return recording


def run(ctx: StageContext) -> GraphSection:
    opts = options(ctx)
    try:
        dot_path()
    except DotMissing as exc:
        raise SkipStage(str(exc)) from None
    subject = ctx.subject
    metric, costs = cost_metric(ctx, opts["metric"])
    with meta_attention.on_meta(subject.device, subject.attention_padding):  # as the passes
        built = build_graph(
            subject.model,
            subject.args,
            subject.kwargs,
            depth=opts["depth"],
            budget=opts["budget"],
            metric=metric,
            costs=costs,
            title=f"{type(subject.model).__name__} ({subject.name})",
            recorded=shared_recording(ctx),
        )
    section = built.section
    formats = ["svg"] + ([opts["format"]] if opts["format"] != "svg" else [])
    start = time.perf_counter()
    outputs = render(built.dot, formats)
    section.layout_seconds = round(time.perf_counter() - start, 4)
    out_dir = ctx.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "graph.dot", built.dot)
    section.files["dot"] = "graph.dot"
    for fmt, data in outputs.items():
        write_atomic(out_dir / f"graph.{fmt}", data)
        section.files[fmt] = f"graph.{fmt}"
    section.svg = inline_svg(outputs["svg"].decode("utf-8"))
    return section
