"""What the templates get: the report plus a few derived, display-ready values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reporter.render.templates import templates_dir
from reporter.report import STAGE_NAMES, BudgetResult, Finding, Report
from reporter.report.enums import SEVERITIES, Status

SEVERITY_ORDER = SEVERITIES[::-1]  # most severe first


def view_model(report: Report, kind: str, *, for_print: bool = False) -> dict[str, Any]:
    """Variables for report.<kind>.j2: sections with a partial, headline figures, problems.
    for_print: the HTML that becomes the PDF (leaner charts)."""
    partials = templates_dir() / "sections"
    sections = [
        name
        for name in STAGE_NAMES
        if getattr(report, name) is not None and (partials / f"{name}.{kind}.j2").is_file()
    ]
    docs = rule_docs(report)
    return {
        "report": report,
        "sections": sections,
        "headline": headline(report),
        "problems": {n: s for n, s in report.stages.items() if s.status == Status.FAILED},
        "severity_counts": severity_counts(report.findings),
        "stage_names": [n for n in STAGE_NAMES if n in report.stages],
        "findings": finding_links(report, sections, docs),
        "budgets": budget_rows(report.budgets),
        "budgets_crossed": sum(1 for b in report.budgets if b.status == "crossed"),
        "rule_docs": docs,
        **_section_views(report, kind, for_print),
    }


def _if_present(section: Any, build: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """build(section, *args, **options), or None where the report lacks the section."""
    return None if section is None else build(section, *args, **options)


def _section_views(report: Report, kind: str, for_print: bool) -> dict[str, Any]:
    """Each section's display-ready values (None for a section the report lacks); the SVG
    charts, drawn here and never stored in the Report, in HTML only. The view modules are
    imported here because only rendering needs them."""
    from reporter.render.deploy_view import deploy_page
    from reporter.render.distributed_view import rank_rows, rank_time_svg
    from reporter.render.experiments_view import experiments_page
    from reporter.render.flops_view import flops_page
    from reporter.render.graph_view import graph_page
    from reporter.render.health_view import health_view, section_charts
    from reporter.render.memory_timeline_view import timeline_view
    from reporter.render.memory_view import memory_view
    from reporter.render.profile_view import profile_rows, profile_view
    from reporter.render.roofline_view import roofline_view
    from reporter.render.summary_view import summary_view
    from reporter.render.timing_view import timing_view

    distributed = report.distributed
    timeline = report.memory.timeline if report.memory is not None else None
    views = {
        "summary": summary_view(report, for_print=for_print),
        "timing": _timing(report),
        "profile": _if_present(report.profile, profile_rows, report.timing, for_print=for_print),
        "roofline": _if_present(report.roofline, roofline_view, for_print=for_print),
        "graph": _if_present(report.graph, graph_page, for_print=for_print),
        "flops": _if_present(report.flops, flops_page, for_print=for_print),
        "memory": _if_present(report.memory, memory_view),
        "distributed_ranks": rank_rows(distributed) if distributed is not None else [],
        "memory_timeline": _if_present(timeline, timeline_view, for_print=for_print),
        "health": _if_present(report.health, health_view, for_print=for_print),
        "experiments": _if_present(report.experiments, experiments_page),
        "deploy": _if_present(report.deploy, deploy_page),
        "trace": _trace(report, kind, for_print),
    }
    if kind == "html":
        views |= {
            "health_charts": _if_present(report.health, section_charts, for_print=for_print),
            "profile_charts": _if_present(report.profile, profile_view, for_print=for_print),
            "timing_charts": _if_present(report.timing, timing_view, for_print=for_print),
            "distributed_chart": rank_time_svg(distributed) if distributed is not None else "",
        }
    return views


def _timing(report: Report) -> Any:
    """The timing section's rows, with what `perfreport diff` could detect between two runs
    like this one (worked out only when there is a timing section)."""
    from reporter.diff import single_run_detectable
    from reporter.render.timing_view import timing_rows

    timing = report.timing
    return timing_rows(timing, single_run_detectable(report)) if timing is not None else None


def _trace(report: Report, kind: str, for_print: bool) -> Any:
    """The trace section's rows and notes; its charts in HTML only."""
    from reporter.render.trace_page import trace_page
    from reporter.render.trace_view import trace_view

    section = report.trace
    if section is None:
        return None
    return trace_page(
        section,
        for_print=for_print,
        profile_shown=report.profile is not None,
        charts=trace_view(section) if kind == "html" else None,
    )


def severity_counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per severity, most severe first; severities with none are left out."""
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY_ORDER}
    return {s: n for s, n in counts.items() if n}


@dataclass
class FindingLinks:
    """Where a finding's line links to, each only where that place is on the page."""

    rule_doc: bool  # the rule's documentation, at the end of the findings
    layer: bool  # the target's row in the layer table
    graph: bool  # the graph holding the target
    section: str  # the section with the evidence ("": none, or the layer row says it)


def finding_links(
    report: Report, sections: list[str], docs: dict[str, str]
) -> list[tuple[Finding, FindingLinks]]:
    layers = {r.name for r in report.summary.layers} if report.summary else set()
    graph = {m for n in report.graph.nodes for m in n.modules} if report.graph else set()
    section_of = finding_sections()
    out = []
    for f in report.findings:
        in_layers = f.target in layers
        section = section_of.get(f.rule, "")
        links = FindingLinks(
            rule_doc=f.rule in docs,
            layer=in_layers,
            graph=f.target in graph,
            section=section if section in sections and not in_layers else "",
        )
        out.append((f, links))
    return out


BUDGET_ROWS = {  # status -> (the HTML row's class, the Markdown line's mark)
    "crossed": ("failed", ":x: **crossed**"),
    "unmeasured": ("skipped", ":grey_question: unmeasured"),
}


@dataclass
class BudgetRow:
    budget: BudgetResult
    css: str  # the HTML row's class
    mark: str  # the Markdown line's status


def budget_rows(
    budgets: list[BudgetResult],
    marks: dict[str, tuple[str, str]] = BUDGET_ROWS,
    other: tuple[str, str] = ("", ":white_check_mark: ok"),
) -> list[BudgetRow]:
    """Each budget with its row class and mark by status (`other` for a budget kept)."""
    return [BudgetRow(b, *marks.get(b.status, other)) for b in budgets]


def rule_docs(report: Report) -> dict[str, str]:
    """Each rule with a finding, once, with its documentation: from the finding, or from
    the registry for a report.json written before findings carried it."""
    from reporter.rules import RULES
    from reporter.rules.registry import rule_doc

    docs: dict[str, str] = {}
    for f in report.findings:
        if f.rule not in docs:
            known = RULES.get(f.rule)
            docs[f.rule] = f.rule_doc or (rule_doc(known) if known else "")
    return {rule: doc for rule, doc in docs.items() if doc}


def finding_sections() -> dict[str, str]:
    """Rule id -> the report section holding its evidence (the first section it reads)."""
    from reporter.rules import RULES

    return {r.id: r.reads[0] for r in RULES.values() if r.reads}


def headline(report: Report) -> list[tuple[str, str, str]]:
    """(label, value, how it was measured) for the figures shown first."""
    from reporter.render import format as f

    items: list[tuple[str, str, str]] = []
    params = report.model.parameters
    if params is not None:
        items.append(("Parameters", f.count(params.total), f"{params.total:,} unique"))
    if report.flops is not None:
        items.append(
            ("Forward FLOPs", f.flops(report.flops.forward_total), "FlopCounterMode, 1 pass")
        )
    if report.memory is not None:
        items.append(
            (
                "Inference memory",
                f.nbytes(report.memory.inference_total_bytes),
                "weights + inputs + activation peak",
            )
        )
        training = report.memory.training
        if training is not None and "adam" in training.total_bytes:
            items.append(
                ("Training memory", f.nbytes(training.total_bytes["adam"]), "estimate, Adam")
            )
    timing = report.timing
    latency = getattr(timing, "latency_ms", None)
    if latency is not None and getattr(latency, "median", None) is not None:
        items.append(("Latency (median)", f.ms(latency.median), "timed outside the profiler"))
    throughput = getattr(timing, "throughput", None)
    if throughput:
        items.append(("Throughput", f"{f.count(throughput)}/s", "samples per second"))
    return items
