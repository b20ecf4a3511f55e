"""The rule registry: rules are functions of the Report that return findings.

A rule declares its thresholds with defaults; `thresholds()` gathers them into the one
table users override (``[tool.perfreport.thresholds]`` or ``--config``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reporter.report import Finding, Report
from reporter.report.enums import SEVERITIES, Severity

RuleFunc = Callable[[Report, dict[str, float]], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str  # what the rule looks for, for docs/rules.md
    reads: tuple[str, ...]  # report sections the rule needs
    func: RuleFunc
    thresholds: dict[str, float] = field(default_factory=dict)
    doc: str = ""  # why it matters and what to do (docs/rules.md)


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    title: str,
    *,
    reads: Iterable[str],
    thresholds: dict[str, float] | None = None,
    doc: str = "",
) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule. Threshold names are global: prefix them with the rule's topic."""

    def register(func: RuleFunc) -> RuleFunc:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id!r} registered twice")
        RULES[rule_id] = Rule(rule_id, title, tuple(reads), func, dict(thresholds or {}), doc)
        return func

    return register


def rule_doc(r: Rule, table: dict[str, float] | None = None) -> str:
    """A rule's documentation as one paragraph: title, doc, its thresholds (the values
    in `table`, defaults otherwise)."""
    text = f"{r.title}. {r.doc}".strip()
    if r.thresholds:
        values = {**r.thresholds, **{k: v for k, v in (table or {}).items() if k in r.thresholds}}
        text += " Thresholds: " + ", ".join(f"{k} = {v:g}" for k, v in values.items()) + "."
    return text


def default_thresholds() -> dict[str, float]:
    table: dict[str, float] = {}
    for r in RULES.values():
        table.update(r.thresholds)
    return table


def run_rules(report: Report, overrides: dict[str, float] | None = None) -> list[Finding]:
    """Every rule whose sections are present; a rule that crashes becomes an info finding."""
    table = {**default_thresholds(), **(overrides or {})}
    findings: list[Finding] = []
    for r in RULES.values():
        if not all(getattr(report, s, None) is not None for s in r.reads):
            continue
        try:
            for f in r.func(report, table):
                f.docs = f.docs or f"docs/rules.md#{r.id}"
                f.rule_doc = f.rule_doc or rule_doc(r, table)
                findings.append(f)
        except Exception as exc:  # a broken rule must not lose the report
            findings.append(
                Finding(
                    rule="rule-error",
                    severity=Severity.INFO,
                    title=f"rule {r.id} could not run: {type(exc).__name__}: {exc}",
                    evidence=evidence(traceback=traceback.format_exc(limit=3)),
                )
            )
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    findings.sort(key=lambda f: order.get(f.severity, 99))
    return findings


def evidence(**values: Any) -> dict[str, Any]:
    """A finding's evidence: the values in the order given, without empty (None) entries.
    Every rule builds its evidence here."""
    return {k: v for k, v in values.items() if v is not None}


def numbered(label: str, items: Iterable[Any]) -> dict[str, Any]:
    """Evidence entries for a list shown one per line: {"<label> 1": first, ...}."""
    return {f"{label} {i}": item for i, item in enumerate(items, start=1)}
