"""The deployment readiness section, decided and formatted for
templates/sections/deploy.{html,md}.j2: each check's outcome text, the compile graph count,
the Markdown's first graph breaks. Text is plain: the templates escape it (``| md`` in
Markdown, where the user's messages stay the only escaped part)."""

from __future__ import annotations

from dataclasses import dataclass

from reporter.report.deploy import CheckResult, DeploySection, GraphBreak

MD_BREAKS = 5


@dataclass(frozen=True)
class CheckRow:
    label: str  # HTML
    md_label: str
    status: str  # "ok", "skipped" or "failed"
    mark_class: str  # "ok" or "bad"; "" unmarked (skipped)
    mark: str  # "✓ works" or "✗ fails"
    text: str  # the HTML's text after the mark
    location: str  # where a failure happened, "" otherwise
    md_lead: str  # "works", "skipped: " or "**fails**: " (Markdown markup of ours)
    detail: str  # the Markdown's user text after md_lead: the reason or the error
    seconds: str


@dataclass(frozen=True)
class DeployPage:
    checks: tuple[CheckRow, ...]
    graphs: str  # "N graph(s), M distinct break(s)" when torch.compile worked, else ""
    md_breaks: tuple[GraphBreak, ...]


def check_row(label: str, md_label: str, c: CheckResult) -> CheckRow:
    """A check's outcome: a mark for works and fails, the reason or the error beside it."""
    common = {
        "label": label,
        "md_label": md_label,
        "status": c.status,
        "seconds": f"{c.seconds:.2f} s" if c.seconds else "",
    }
    if c.status == "ok":
        return CheckRow(
            **common,
            mark_class="ok",
            mark="✓ works",
            text="",
            location="",
            md_lead="works",
            detail="",
        )
    if c.status == "skipped":
        return CheckRow(
            **common,
            mark_class="",
            mark="",
            text=f"skipped: {c.reason}",
            location="",
            md_lead="skipped: ",
            detail=c.reason,
        )
    return CheckRow(
        **common,
        mark_class="bad",
        mark="✗ fails",
        text=f": {c.error}",
        location=c.location,
        md_lead="**fails**: ",
        detail=c.error,
    )


def deploy_page(d: DeploySection) -> DeployPage:
    return DeployPage(
        checks=(
            check_row("torch.export", "torch.export", d.export),
            check_row("torch.compile (dynamo)", "torch.compile", d.compile),
            check_row("ONNX export", "ONNX export", d.onnx),
        ),
        graphs=f"{d.graph_count} graph(s), {len(d.graph_breaks)} distinct break(s)"
        if d.compile.status == "ok"
        else "",
        md_breaks=tuple(d.graph_breaks[:MD_BREAKS]),
    )
