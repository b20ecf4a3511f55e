"""Graph -> Graphviz DOT text (escaped labels, clusters, heat colours, legend) and `dot` runs.

Every name in a label is user data: labels are HTML-like labels built with html.escape,
tooltips are escaped DOT strings, and node ids are ours (n12, cluster_3), so nothing a
model calls itself reaches the SVG unescaped.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from reporter.graph.layout import Cluster, Graph, Node
from reporter.sanitize import label_text
from reporter.units import shape_text

# Light to dark; the first is for nodes with no cost. Dark fills get white text.
HEAT = ("#ffffff", "#fff3c4", "#fed976", "#fd8d3c", "#e8552b", "#b61d1d")
HOT_BORDER = "#7a0b0b"
MUTED = "#5b6475"
FONT = "DejaVu Sans"
# A last resort only: the node budget is what keeps layouts fast.
DOT_TIMEOUT_S = 120.0


class DotMissing(Exception):
    """Graphviz `dot` is not installed."""


def esc(text: object) -> str:
    """Text for an HTML-like DOT label (and, through dot, for SVG)."""
    return html.escape(label_text(text), quote=True).replace("\n", " ")


def dot_string(text: object) -> str:
    """A double-quoted DOT string; backslashes doubled so dot reads no escapes in it."""
    s = label_text(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{s}"'


def heat_level(value: float, top: float) -> int:
    """0 for no cost, else 1..5 by the share of the largest cost."""
    if value <= 0 or top <= 0:
        return 0
    return min(len(HEAT) - 1, 1 + int((len(HEAT) - 1) * value / top * 0.999))


def hottest(nodes: list[Node], n: int = 3) -> list[Node]:
    ranked = sorted((x for x in nodes if x.cost > 0), key=lambda x: -x.cost)
    return ranked[:n]


def to_dot(
    graph: Graph,
    *,
    title: str,
    metric: str,
    format_cost: Callable[[float], str],
) -> str:
    """DOT text for the graph; `format_cost` turns a cost into text (e.g. '1.20 M params')."""
    top = max((n.cost for n in graph.nodes), default=0.0)
    ranks = {n.id: i + 1 for i, n in enumerate(hottest(graph.nodes))}
    lines = [
        "digraph G {",
        f"  graph [rankdir=TB, fontname={dot_string(FONT)}, fontsize=11, nodesep=0.25,",
        "         ranksep=0.3, nslimit=4, nslimit1=4, mclimit=0.5, searchsize=30,",
        f"         label={_header(title, graph, metric, top, ranks, format_cost)},",
        "         labelloc=t, labeljust=l];",
        f'  node [fontname={dot_string(FONT)}, fontsize=10, shape=box, style="rounded,filled",',
        '        color="#8a93a3", fillcolor="#ffffff", margin="0.12,0.04", height=0.3];',
        f'  edge [fontname={dot_string(FONT)}, fontsize=8, color="#6b7385", '
        f'fontcolor="{MUTED}", arrowsize=0.6];',
    ]
    children: dict[str | None, list[Cluster]] = {}
    for c in graph.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[Node]] = {}
    for n in graph.nodes:
        members.setdefault(n.cluster, []).append(n)

    def emit(cluster: str | None, indent: str) -> None:
        for n in members.get(cluster, []):
            lines.append(indent + _node(n, top, ranks.get(n.id), format_cost))
        for c in children.get(cluster, []):
            lines.append(f"{indent}subgraph {c.id} {{")
            lines.append(f"{indent}  {_cluster_attrs(c)}")
            emit(c.id, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    for e in graph.edges:
        label = ", ".join(shape_text(s) for s in e.shapes[:2])
        if len(e.shapes) > 2:
            label += f" +{len(e.shapes) - 2}"
        lines.append(f"  {e.src} -> {e.dst} [label={dot_string(' ' + label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(n: Node, top: float, rank: int | None, format_cost: Callable[[float], str]) -> str:
    level = heat_level(n.cost, top)
    font = "#ffffff" if level >= 4 else "#1d2330"
    # grey on white, near-black on mid heat (grey on orange reads poorly), white on dark
    sub = "#ffffff" if level >= 4 else ("#2b3140" if level >= 2 else MUTED)
    # Escaped for HTML too: dot keeps entities as they are, so the DOT file has no raw markup.
    attrs = [f"tooltip={dot_string(esc(f'{n.name} ({n.type})'))}"]
    if n.kind in ("input", "output"):
        label = f"<<b>{esc(n.name)}</b>>"
        attrs += ["shape=oval", 'fillcolor="#e8eef8"', 'color="#2f5d9b"', f"label={label}"]
        return f"{n.id} [{', '.join(attrs)}];"
    if n.kind == "op":
        label = f'<<font color="{font}">{esc(n.name)}</font>'
        if n.cost > 0:
            label += f'<br/><font point-size="8" color="{sub}">{esc(format_cost(n.cost))}</font>'
        label += ">"
        attrs += [f"label={label}", "fontsize=9", 'color="#b3b9c4"', "height=0.22"]
        attrs.append(f'fillcolor="{HEAT[level]}"' if level else 'fillcolor="#f3f4f6"')
        return f"{n.id} [{', '.join(attrs)}];"
    rows = []
    if rank is not None:
        rows.append(f'<font color="{font}"><b>#{rank} </b></font>')
    head = f'<font color="{font}"><b>{esc(_short(n.label or n.name))}</b></font>'
    rows = ["".join(rows) + head]
    type_line = esc(_short(n.type, 40))
    if n.repeats > 1:
        type_line = f"<b>× {n.repeats}</b>  {type_line}"
    rows.append(f'<font point-size="9" color="{sub}">{type_line}</font>')
    if n.cost > 0:
        rows.append(f'<font point-size="9" color="{sub}">{esc(format_cost(n.cost))}</font>')
    attrs.append(f"label=<{'<br/>'.join(rows)}>")
    attrs.append(f'fillcolor="{HEAT[level]}"')
    if n.repeats > 1:
        attrs.append("shape=box3d")
        attrs.append('style="filled"')
    if rank is not None:
        attrs += [f'color="{HOT_BORDER}"', f"penwidth={4 - rank * 0.5:g}"]
    return f"{n.id} [{', '.join(attrs)}];"


def _short(text: str, limit: int = 48) -> str:
    """Long dotted paths keep their end, which names the layer."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _cluster_attrs(c: Cluster) -> str:
    name = esc(_short(c.label, 60))
    kind = esc(_short(c.type, 40))
    if c.repeats > 1:
        label = (
            f'<<b>× {c.repeats}</b>  {name} <font color="{MUTED}">{kind}</font><br/>'
            f'<font point-size="9" color="{MUTED}">inside of one repeat; costs add up all '
            f"{c.repeats}</font>>"
        )
        return (
            f'label={label}; style="rounded,dashed,filled"; color="#2f5d9b"; '
            f'fillcolor="#f2f6fc"; penwidth=1.6; fontsize=10; labeljust=l;'
        )
    label = f'<<b>{name}</b> <font color="{MUTED}">{kind}</font>>'
    return (
        f'label={label}; style="rounded,filled"; color="#c9ced8"; fillcolor="#fafbfc"; '
        f"fontsize=10; labeljust=l;"
    )


def _header(
    title: str,
    graph: Graph,
    metric: str,
    top: float,
    ranks: dict[str, int],
    format_cost: Callable[[float], str],
) -> str:
    """Title and legend as the graph's label, so the legend takes no place in the layout."""
    steps = len(HEAT) - 1
    swatches = "".join(
        f'<td bgcolor="{HEAT[level]}" border="1" color="#c9ced8"><font point-size="8" '
        f'color="{"#ffffff" if level >= 4 else "#1d2330"}">'
        # dot refuses an empty <font></font>: a model with no parameters has no scale
        f"{esc(format_cost(top * level / steps)) if top > 0 else '–'}</font></td>"
        for level in range(1, len(HEAT))
    )
    names = sorted((ranks[n.id], n.name) for n in graph.nodes if n.id in ranks)
    hot = ", ".join(f"#{rank} {_short(name, 40)}" for rank, name in names)
    rows = [
        f'<tr><td colspan="{steps + 1}" align="left"><font point-size="13"><b>{esc(title)}'
        "</b></font></td></tr>",
        f'<tr><td align="left"><font point-size="8">colour: {esc(metric)}, up to</font></td>'
        f"{swatches}</tr>",
    ]
    if hot:
        rows.append(
            f'<tr><td colspan="{steps + 1}" align="left"><font point-size="8">'
            f"dark border: the 3 hottest ({esc(hot)})</font></td></tr>"
        )
    if graph.dropped:
        rows.append(
            f'<tr><td colspan="{steps + 1}" align="left"><font point-size="9" color="#b42318">'
            f"{graph.dropped} nodes not drawn (node limit): lower --graph-depth</font></td></tr>"
        )
    return (
        '<<table border="0" cellborder="0" cellspacing="2" cellpadding="2">'
        + "".join(rows)
        + "</table>>"
    )


def dot_path() -> str:
    path = shutil.which("dot")
    if path is None:
        raise DotMissing(
            "Graphviz `dot` is not installed: install the Debian package graphviz "
            "(apt-get install graphviz) to draw the module graph"
        )
    return path


def render(dot_text: str, formats: list[str], timeout: float = DOT_TIMEOUT_S) -> dict[str, bytes]:
    """Lay the graph out once and write every format; returns format -> file bytes."""
    exe = dot_path()
    with tempfile.TemporaryDirectory(prefix="perfreport-dot-") as tmp:
        src = Path(tmp) / "graph.dot"
        src.write_text(dot_text, encoding="utf-8")
        cmd = [exe]
        for fmt in formats:
            cmd += [f"-T{fmt}", "-o", str(Path(tmp) / f"out.{fmt}")]
        cmd.append(str(src))
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"dot took over {timeout:g} s to lay out the graph: lower --graph-depth"
            ) from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"dot failed: {message[-1] if message else done.returncode}")
        return {fmt: (Path(tmp) / f"out.{fmt}").read_bytes() for fmt in formats}


def inline_svg(svg: str) -> str:
    """dot's SVG without the XML prolog and DOCTYPE, ready to sit inside HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg
