"""The module graph section's page: depth reason, hot nodes, fold cuts, print placement."""

from __future__ import annotations

from reporter.render.graph_view import HTML_FOLDS, MD_FOLDS, cost_text, graph_page
from reporter.report.graph import GraphFold, GraphNode, GraphSection


def node(name: str, rank: int | None, cost: float = 0.0, instances: int = 1) -> GraphNode:
    return GraphNode(
        id=name, kind="module", name=name, type="Linear", rank=rank, cost=cost, instances=instances
    )


def folds(n: int) -> list[GraphFold]:
    return [
        GraphFold(first=f"b{i}.0", last=f"b{i}.3", type="Block", repeats=4, level=1)
        for i in range(n)
    ]


def test_hot_nodes_are_the_ranked_ones_in_rank_order() -> None:
    g = GraphSection(
        metric="FLOPs",
        nodes=[node("c", 3, 3e9), node("x", None), node("a", 1, 1e9, instances=12), node("b", 2)],
        folds=folds(1),
    )
    hot = graph_page(g).hot
    assert [(h.rank, h.name) for h in hot] == [("#1", "a"), ("#2", "b"), ("#3", "c")]
    assert hot[0].instances == "12" and hot[1].instances == ""


def test_hot_nodes_are_listed_only_beside_folds() -> None:
    assert graph_page(GraphSection(nodes=[node("a", 1)])).hot == ()


def test_cost_in_the_section_metric() -> None:
    assert cost_text(2e9, "FLOPs") == "2.00 GFLOP"
    assert cost_text(1.5, "time") == "1.500 ms"
    assert cost_text(1234567.9, "parameters") == "1.23 M params"


def test_fold_cuts_and_what_is_left() -> None:
    page = graph_page(GraphSection(folds=folds(HTML_FOLDS + 3)))
    assert len(page.folds) == HTML_FOLDS and page.folds_more == 3
    assert len(page.md_folds) == MD_FOLDS and page.md_folds_more == HTML_FOLDS + 3 - MD_FOLDS
    assert graph_page(GraphSection(folds=folds(2))).folds_more == 0


def test_print_puts_the_tables_after_a_drawing() -> None:
    drawn = GraphSection(svg="<svg/>")
    assert graph_page(drawn, for_print=True).tables_after
    assert not graph_page(drawn, for_print=True).tables_before
    assert graph_page(drawn).tables_before and not graph_page(drawn).tables_after
    undrawn = graph_page(GraphSection(), for_print=True)
    assert undrawn.tables_before and not undrawn.tables_after


def test_depth_reason_and_markdown_link() -> None:
    auto = graph_page(GraphSection(budget=60, files={"svg": "graph.svg"}))
    assert auto.depth_reason == "the deepest that fits 60 nodes"
    assert auto.md_drawn == "Drawn in [graph.svg](graph.svg)"
    chosen = graph_page(GraphSection(depth_auto=False, files={"dot": "graph.dot"}))
    assert chosen.depth_reason == "set by --graph-depth" and chosen.md_drawn == "Drawn"
