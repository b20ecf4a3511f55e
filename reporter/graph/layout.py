"""From the folded view tree and a depth to the graph that is drawn: nodes, clusters, edges.

Views above the depth that have children become clusters (containers); the others are
nodes. An edge runs from the node that shows a tensor's producer to the node that shows its
consumer, labelled with the shape the consumer received. Costs (parameters, FLOPs) of a node
add up every call it stands for, so a `× 12` block carries the cost of all twelve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reporter.graph.fold import View, ViewTree

if TYPE_CHECKING:  # record.py imports torch; rendering a saved report must not
    from reporter.graph.record import Recording


@dataclass
class Node:
    id: str
    view: int
    kind: str  # "module", "op", "input", "output"
    name: str  # module path or op name; for a fold "first … last"
    type: str
    repeats: int = 1
    cost: float = 0.0
    cluster: str | None = None  # id of the innermost cluster holding it
    label: str = ""  # the name without the path of the cluster around it
    instances: int = 1  # calls it stands for: its own × N times that of folds around it
    modules: list[str] = field(default_factory=list)  # module calls whose costs add up here


@dataclass
class Cluster:
    id: str
    label: str
    type: str
    repeats: int = 1
    parent: str | None = None


@dataclass
class Edge:
    src: str
    dst: str
    shapes: list[tuple[int, ...]] = field(default_factory=list)


@dataclass
class Graph:
    nodes: list[Node]
    clusters: list[Cluster]
    edges: list[Edge]
    dropped: int = 0  # nodes left out to keep dot bounded (only when forced past the budget)


def view_name(view: View, prefix: str = "") -> str:
    """The view's module path (or op name); with a prefix, relative to that container."""
    name = _relative(view.call.name, prefix) or "(model)"
    if view.kind == "repeat":
        return f"{name} … {_relative(view.last_name, prefix)}"
    return name


def _relative(name: str, prefix: str) -> str:
    return name[len(prefix) + 1 :] if prefix and name.startswith(prefix + ".") else name


def view_type(view: View) -> str:
    """The module class, or for a folded pattern the classes of one repeat."""
    if view.kind == "repeat" and view.period > 1:
        return ", ".join(c.call.type for c in view.children)
    return view.call.type


def layout(
    rec: Recording,
    tree: ViewTree,
    depth: int,
    cost_of: dict[int, float],
    max_nodes: int,
) -> Graph:
    """cost_of: recorded call index -> cost (parameters, FLOPs or time) of that call."""
    nodes: list[Node] = []
    clusters: list[Cluster] = []
    shown: dict[int, str] = {}  # view id -> node id that shows it (itself or its ancestor)
    dropped = 0

    def walk(views: list[View], cluster: str | None, prefix: str, times: int) -> None:
        nonlocal dropped
        for view in views:
            expanded = bool(view.children) and view.level < depth
            if expanded:
                cid = f"cluster_{view.id}"
                clusters.append(
                    Cluster(
                        id=cid,
                        label=view_name(view, prefix),
                        type=view_type(view),
                        repeats=view.repeats,
                        parent=cluster,
                    )
                )
                inner = prefix if view.period > 1 or view.call.kind != "module" else view.call.name
                walk(view.children, cid, inner, times * view.repeats)
                continue
            if len(nodes) >= max_nodes:
                dropped += 1
                continue
            nid = f"n{view.id}"
            call = view.call
            nodes.append(
                Node(
                    id=nid,
                    view=view.id,
                    kind="module" if view.kind == "repeat" else call.kind,
                    name=view_name(view),
                    type=view_type(view),
                    repeats=view.repeats,
                    cluster=cluster,
                    label=view_name(view, prefix),
                    instances=times * view.repeats,
                )
            )
            _mark_shown(view, nid, shown)

    walk(tree.top, None, "", 1)
    by_id = {n.id: n for n in nodes}
    for idx, vid in tree.view_of.items():
        nid = shown.get(vid)
        if nid is None:
            continue
        # Count a call only where it is not nested in another counted call of the same
        # node, so a block's cost is its modules' cost once (modules are inclusive).
        parent = rec.calls[idx].parent
        if parent is not None and shown.get(tree.view_of.get(parent, -1)) == nid:
            continue
        by_id[nid].cost += cost_of.get(idx, 0.0)
        call = rec.calls[idx]
        if call.kind == "module":
            by_id[nid].modules.append(call.name)
    edges = _edges(rec, tree, shown)
    return Graph(nodes=nodes, clusters=clusters, edges=edges, dropped=dropped)


def _mark_shown(view: View, nid: str, shown: dict[int, str]) -> None:
    stack = [view]
    while stack:
        v = stack.pop()
        shown[v.id] = nid
        stack.extend(v.children)


def _edges(rec: Recording, tree: ViewTree, shown: dict[int, str]) -> list[Edge]:
    edges: dict[tuple[str, str], Edge] = {}
    for call in rec.calls:
        if not call.inputs:
            continue
        dst = shown.get(tree.view_of.get(call.idx, -1))
        if dst is None:
            continue
        dst_memb = tree.member_of.get(call.idx, {})
        given = _given_to_outermost(rec, tree, shown, call.idx, dst)
        for producer, shape in call.inputs:
            if producer in given:
                continue  # drawn as the module's own input, with the shape it was given
            src = shown.get(tree.view_of.get(producer, -1))
            if src is None or src == dst:
                continue
            src_memb = tree.member_of.get(producer, {})
            # From one repeat of a block to another: the `× N` already says so.
            if any(src_memb[g] != k for g, k in dst_memb.items() if g in src_memb):
                continue
            edge = edges.setdefault((src, dst), Edge(src, dst))
            if shape not in edge.shapes:
                edge.shapes.append(shape)
    return list(edges.values())


def _given_to_outermost(
    rec: Recording, tree: ViewTree, shown: dict[int, str], idx: int, node: str
) -> set[int]:
    """Producers of what the outermost call inside `node` around call idx was given.

    A closed module's inside may re-view its input (MultiheadAttention transposes it);
    the edge into the node shows the shape the module received, not the inner view.
    """
    top = idx
    parent = rec.calls[idx].parent
    while parent is not None and shown.get(tree.view_of.get(parent, -1)) == node:
        top, parent = parent, rec.calls[parent].parent
    if top == idx:
        return set()
    return {p for p, _ in rec.calls[top].inputs}
