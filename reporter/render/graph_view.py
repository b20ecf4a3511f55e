"""The module graph section, decided and formatted for templates/sections/graph.{html,md}.j2.

How the depth was chosen, which folds and hot nodes are listed (and how many are left to
report.json), where print puts the tables, and every cell's text are decided here; the
templates only loop. Text is plain (the templates escape it); the SVG is dot's, made safe by
the graph_svg filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from reporter.report.graph import GraphFold, GraphNode, GraphSection
from reporter.units import count, flops, ms

HTML_FOLDS = 20
MD_FOLDS = 10


@dataclass(frozen=True)
class HotNode:
    rank: str  # "#1"
    name: str
    type: str
    instances: str  # "3" when the node stands for several folded repeats, else ""
    cost: str  # in the section's metric


@dataclass(frozen=True)
class GraphPage:
    depth: int
    max_depth: int
    depth_reason: str  # why this depth
    metric: str  # what colours the nodes
    nodes: int
    edges: int
    calls: str
    dropped_nodes: int
    files: tuple[str, ...]  # the drawing's files beside the report
    folds: tuple[GraphFold, ...]  # the first HTML_FOLDS
    folds_more: int  # folds left to report.json
    hot: tuple[HotNode, ...]  # the hottest nodes, hottest first
    svg: str
    tables_before: bool  # the tables above the drawing (screen, or no drawing)
    tables_after: bool  # print: below it, the drawing takes a page of its own
    method: str  # with the recording and layout time when recording was timed
    md_drawn: str  # "Drawn in [graph.svg](graph.svg)" or "Drawn"
    md_folds: tuple[GraphFold, ...]
    md_folds_more: int


def depth_reason(g: GraphSection) -> str:
    return f"the deepest that fits {g.budget} nodes" if g.depth_auto else "set by --graph-depth"


def cost_text(cost: float, metric: str) -> str:
    """A node's cost in the section's metric: FLOPs, time (ms) or parameters."""
    if metric == "FLOPs":
        return flops(cost)
    if metric == "time":
        return ms(cost)
    return f"{count(int(cost))} params"


def hot_nodes(g: GraphSection) -> tuple[HotNode, ...]:
    """The ranked nodes (the hottest few, drawn with a dark border), by rank."""
    ranked: list[GraphNode] = sorted((n for n in g.nodes if n.rank), key=lambda n: n.rank or 0)
    return tuple(
        HotNode(
            rank=f"#{n.rank}",
            name=n.name,
            type=n.type,
            instances=str(n.instances) if n.instances > 1 else "",
            cost=cost_text(n.cost, g.metric),
        )
        for n in ranked
    )


def graph_page(g: GraphSection, *, for_print: bool = False) -> GraphPage:
    timing = (
        f" Recording took {g.record_seconds:.2f} s, layout {g.layout_seconds:.2f} s."
        if g.record_seconds
        else ""
    )
    return GraphPage(
        depth=g.depth,
        max_depth=g.max_depth,
        depth_reason=depth_reason(g),
        metric=g.metric,
        nodes=len(g.nodes),
        edges=len(g.edges),
        calls=count(g.calls_recorded),
        dropped_nodes=g.dropped_nodes,
        files=tuple(g.files.values()),
        folds=tuple(g.folds[:HTML_FOLDS]),
        folds_more=max(len(g.folds) - HTML_FOLDS, 0),
        hot=hot_nodes(g) if g.folds else (),  # listed beside the folds, never alone
        svg=g.svg,
        tables_before=not (for_print and g.svg),
        tables_after=bool(for_print and g.svg),
        method=g.method + timing,
        md_drawn="Drawn in [graph.svg](graph.svg)" if g.files.get("svg") else "Drawn",
        md_folds=tuple(g.folds[:MD_FOLDS]),
        md_folds_more=max(len(g.folds) - MD_FOLDS, 0),
    )
