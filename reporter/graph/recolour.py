"""Colour a recorded graph again by measured time, from the report alone.

The profile stage runs after the graph stage, so the stage can only colour by parameters or
FLOPs. Each node keeps the module paths it stands for; with the profile section's per-module
times, `colour_by_time` redraws the same graph (same nodes, edges, clusters) with a time
heat and legend. It needs `dot`, and no model: `perfreport render` can call it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reporter.graph.dot import hottest, inline_svg, render, to_dot
from reporter.graph.layout import Cluster, Edge, Graph, Node
from reporter.report.graph import GraphSection
from reporter.units import ms


def module_times_ms(profile: Any) -> dict[str, float]:
    """Module path -> milliseconds per step (inclusive), from a ProfileSection."""
    return {m.name: m.total_us / 1000.0 for m in getattr(profile, "modules", None) or []}


def colour_by_time(section: GraphSection, profile: Any) -> GraphSection | None:
    """A copy of the section coloured by time, or None when the profile timed no node."""
    result = time_coloured(section, profile)
    return result[0] if result else None


def time_coloured(section: GraphSection, profile: Any) -> tuple[GraphSection, str] | None:
    """The section coloured by time and its DOT text, or None when no node was timed."""
    times = module_times_ms(profile)
    costs = {n.id: sum(times.get(name, 0.0) for name in n.modules) for n in section.nodes}
    if not any(c > 0 for c in costs.values()):
        return None
    graph = Graph(
        nodes=[
            Node(
                id=n.id,
                view=0,
                kind=n.kind,
                name=n.name,
                type=n.type,
                repeats=n.repeats,
                cost=costs[n.id],
                cluster=n.cluster,
                label=n.label,
                instances=n.instances,
                modules=list(n.modules),
            )
            for n in section.nodes
        ],
        clusters=[Cluster(c.id, c.label, c.type, c.repeats, c.parent) for c in section.clusters],
        edges=[Edge(e.src, e.dst, [tuple(s) for s in e.shapes]) for e in section.edges],
        dropped=section.dropped_nodes,
    )
    dot_text = to_dot(graph, title=section.title, metric="time", format_cost=ms)
    svg = inline_svg(render(dot_text, ["svg"])["svg"].decode("utf-8"))
    ranks = {n.id: i + 1 for i, n in enumerate(hottest(graph.nodes))}
    nodes = [dataclasses.replace(n, cost=costs[n.id], rank=ranks.get(n.id)) for n in section.nodes]
    return dataclasses.replace(section, metric="time", svg=svg, nodes=nodes), dot_text


def recolour_files(report: Any, out_dir: Any) -> bool:
    """Colour the report's graph by the profile's module times and rewrite graph.svg/.dot."""
    from pathlib import Path

    from reporter.output import write_atomic

    if report.graph is None or report.profile is None or not report.graph.nodes:
        return False
    result = time_coloured(report.graph, report.profile)
    if result is None:
        return False
    report.graph, dot_text = result
    write_atomic(Path(out_dir) / "graph.dot", dot_text)
    write_atomic(Path(out_dir) / "graph.svg", render(dot_text, ["svg"])["svg"])
    return True
