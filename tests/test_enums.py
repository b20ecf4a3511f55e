"""reporter/report/enums.py: the value sets are the strings report.json holds, in one
order, and writing a member gives the same JSON as writing its string."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reporter.report import (
    BudgetResult,
    Finding,
    ModelInfo,
    Report,
    StageStatus,
    load_report,
    report_to_json,
)
from reporter.report.enums import SEVERITIES, SEVERITY_RANK, BudgetStatus, Severity, Status
from reporter.rules import registry


def report(status: str, severity: str, budget: str) -> Report:
    return Report(
        model=ModelInfo(class_name="m", source="m.py"),
        stages={"timing": StageStatus(status)},
        findings=[Finding(rule="r", severity=severity, title="t")],
        budgets=[BudgetResult("latency_ms", "<10", budget, "", 12.0, None, None)],
    )


def test_members_are_the_json_strings() -> None:
    assert [s.value for s in Status] == ["ok", "failed", "skipped"]
    assert [s.value for s in Severity] == ["info", "warning", "critical"]
    assert [s.value for s in BudgetStatus] == ["ok", "crossed", "unmeasured"]
    members = report_to_json(report(Status.FAILED, Severity.CRITICAL, BudgetStatus.CROSSED))
    strings = report_to_json(report("failed", "critical", "crossed"))
    assert members == strings
    data = json.loads(members)
    assert data["stages"]["timing"]["status"] == "failed"
    assert data["findings"][0]["severity"] == "critical"
    assert data["budgets"][0]["status"] == "crossed"


def test_strings_read_back_compare_equal_to_members(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(report_to_json(report("skipped", "warning", "unmeasured")))
    again = load_report(path)
    assert again.stages["timing"].status == Status.SKIPPED
    assert again.findings[0].severity == Severity.WARNING
    assert again.budgets[0].status == BudgetStatus.UNMEASURED
    assert SEVERITY_RANK[again.findings[0].severity] == 1


def test_one_severity_order_for_sorting_and_fail_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SEVERITIES == (Severity.INFO, Severity.WARNING, Severity.CRITICAL)
    assert [SEVERITY_RANK[s] for s in ("info", "warning", "critical")] == [0, 1, 2]
    # run_rules lists the most severe first, whatever order the rules return them in.
    monkeypatch.setattr(registry, "RULES", {})

    @registry.rule("mixed", "mixed severities", reads=())
    def mixed(rep: Report, th: dict[str, float]) -> list[Finding]:
        return [Finding("mixed", s, s) for s in ("warning", "info", "critical", "warning")]

    assert list(registry.RULES) == ["mixed"]
    found = registry.run_rules(report("ok", "info", "ok"))
    assert [f.severity for f in found] == ["critical", "warning", "warning", "info"]
