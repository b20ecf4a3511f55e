"""Section written by the graph stage: the drawn module graph and what was folded."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GraphNode:
    id: str  # the DOT node id (n12)
    kind: str  # "module", "op", "input" or "output"
    name: str  # module path, op name or input name; a fold reads "first … last"
    type: str
    repeats: int = 1  # × N when repeated identical blocks were folded into this node
    cost: float = 0.0  # in the section's metric, added up over every call it stands for
    cluster: str | None = None  # id of the container (cluster) drawn around it
    rank: int | None = None  # 1, 2, 3 for the three hottest nodes
    instances: int = 1  # calls it stands for (inside a × 12 fold: 12)
    label: str = ""  # name as drawn: relative to the container around it
    # Module paths whose costs add up in this node (outermost calls only), so that the
    # graph can be coloured again by measured time once the profile stage has run.
    modules: list[str] = field(default_factory=list)


@dataclass
class GraphEdge:
    src: str
    dst: str
    shapes: list[list[int]] = field(default_factory=list)  # shapes the consumer received


@dataclass
class GraphCluster:
    id: str
    label: str
    type: str
    repeats: int = 1  # a folded block drawn open: its inside stands for all repeats
    parent: str | None = None


@dataclass
class GraphFold:
    """Repeated identical blocks folded into one: the structure summary."""

    first: str  # name of the first call folded
    last: str
    type: str  # module class, or the pattern "Linear, LayerNorm, GELU"
    repeats: int
    level: int  # depth in the module tree (1 = a child of the model)


@dataclass
class GraphSection:
    svg: str = ""  # dot's SVG, without the XML prolog, for inline HTML
    title: str = ""
    depth: int = 1  # the depth drawn
    depth_auto: bool = True  # chosen from the node budget (False: --graph-depth)
    max_depth: int = 1  # deepest level the folded tree has
    budget: int = 0  # node budget the automatic depth fits in
    nodes_by_depth: dict[str, int] = field(default_factory=dict)  # depth -> node count
    metric: str = "parameters"  # what colours the nodes: parameters, FLOPs or time
    calls_recorded: int = 0  # module calls and ops recorded in the run
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    clusters: list[GraphCluster] = field(default_factory=list)
    folds: list[GraphFold] = field(default_factory=list)
    dropped_nodes: int = 0  # left out to keep the layout bounded
    files: dict[str, str] = field(default_factory=dict)  # format -> file name beside report
    record_seconds: float = 0.0  # 0 when recorded during the shared inference pass
    layout_seconds: float = 0.0
    method: str = ""
