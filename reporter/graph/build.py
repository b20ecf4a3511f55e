"""Model + inputs -> the graph section and its DOT text (no `dot` run, no files)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from torch import nn

from reporter.graph.dot import hottest, to_dot
from reporter.graph.fold import ViewTree, choose_depth, fold, nodes_at_depth
from reporter.graph.layout import Graph, layout
from reporter.graph.record import Recording, record
from reporter.report.graph import GraphCluster, GraphEdge, GraphFold, GraphNode, GraphSection
from reporter.units import count, flops, ms

DEFAULT_BUDGET = 60  # nodes a person reads on one screen
MAX_NODES = 400  # hard bound for dot, even when --graph-depth asks for more

METRIC_FORMAT = {
    "parameters": lambda n: f"{count(int(n))} params",
    "FLOPs": flops,
    "time": ms,
}

METHOD = (
    "One forward pass on the sample input (no grad; the shared torchinfo pass when the "
    "summary or flops stage ran), recorded with module hooks and a "
    "TorchFunctionMode: nodes are the modules that ran and the torch functions called between "
    "them; reshapes and dtype casts are folded into the edge. Runs of identical blocks, each "
    "feeding the next, are folded into one node marked × N (costs add up every repeat). The "
    "depth is the deepest that fits the node budget unless --graph-depth sets it. Parameters "
    "are counted per module, so a tied weight counts in each module holding it. Laid out by "
    "Graphviz dot."
)


@dataclass
class BuiltGraph:
    section: GraphSection
    dot: str
    graph: Graph


def build_graph(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    depth: int | None = None,
    budget: int = DEFAULT_BUDGET,
    metric: str = "parameters",
    costs: dict[str, float] | None = None,
    title: str = "",
    fold_repeats: bool = True,
    recorded: Recording | None = None,
) -> BuiltGraph:
    """costs: module path -> cost for metric FLOPs or time; parameters are counted here.

    recorded: a recording of the same forward made elsewhere (the shared inference pass);
    without one the model runs once here.
    """
    start = time.perf_counter()
    rec = recorded or record(model, args, kwargs)
    record_s = 0.0 if recorded else time.perf_counter() - start
    tree = fold(rec, enabled=fold_repeats)
    counts = nodes_at_depth(tree)
    chosen = choose_depth(tree, budget) if depth is None else min(depth, max(counts))
    by_path = rec.module_params if metric == "parameters" else (costs or {})
    cost_of = {c.idx: float(by_path.get(c.name, 0)) for c in rec.calls if c.kind == "module"}
    graph = layout(rec, tree, chosen, cost_of, MAX_NODES)
    fmt = METRIC_FORMAT.get(metric, count)
    title = title or type(model).__name__
    dot_text = to_dot(
        graph,
        title=title,
        metric=metric,
        format_cost=fmt,
    )
    section = GraphSection(
        title=title,
        depth=chosen,
        depth_auto=depth is None,
        max_depth=max(counts),
        budget=budget,
        nodes_by_depth={str(d): n for d, n in counts.items()},
        metric=metric,
        calls_recorded=sum(1 for c in rec.calls if c.kind in ("module", "op")),
        nodes=_nodes(graph),
        edges=[GraphEdge(e.src, e.dst, [list(s) for s in e.shapes]) for e in graph.edges],
        clusters=[GraphCluster(c.id, c.label, c.type, c.repeats, c.parent) for c in graph.clusters],
        folds=folds(tree),
        dropped_nodes=graph.dropped,
        record_seconds=round(record_s, 4),
        method=METHOD,
    )
    return BuiltGraph(section=section, dot=dot_text, graph=graph)


def _nodes(graph: Graph) -> list[GraphNode]:
    ranks = {n.id: i + 1 for i, n in enumerate(hottest(graph.nodes))}
    return [
        GraphNode(
            id=n.id,
            kind=n.kind,
            name=n.name,
            type=n.type,
            repeats=n.repeats,
            cost=n.cost,
            cluster=n.cluster,
            rank=ranks.get(n.id),
            instances=n.instances,
            label=n.label,
            modules=n.modules,
        )
        for n in graph.nodes
    ]


def folds(tree: ViewTree) -> list[GraphFold]:
    """Every folded run, outermost first, in the order they ran."""
    out = []
    stack = list(reversed(tree.top))
    while stack:
        v = stack.pop()
        if v.kind == "repeat":
            kind = v.call.type if v.period == 1 else ", ".join(c.call.type for c in v.children)
            out.append(GraphFold(v.call.name, v.last_name, kind, v.repeats, v.level))
        stack.extend(reversed(v.children))
    return out
