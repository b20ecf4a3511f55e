"""The budgets table: the badge counts crossed budgets; rows are classed by status."""

from __future__ import annotations

from reporter.render.budgets_view import budgets_page
from reporter.report import BudgetResult


def test_badge_counts_the_crossed_and_rows_are_classed() -> None:
    page = budgets_page(
        [
            BudgetResult(metric="latency_ms", spec="+5%", status="crossed", message="slower"),
            BudgetResult(metric="params", spec="10M", status="ok", message="fine"),
            BudgetResult(metric="memory", spec="1GB", status="unmeasured", message="no"),
            BudgetResult(metric="flops", spec="1G", status="crossed", message="more"),
        ]
    )
    assert (page.badge_class, page.badge) == ("critical", "2 crossed")
    assert [r.row_class for r in page.rows] == ["failed", "", "skipped", "failed"]
    assert page.rows[0].budget == "latency_ms=+5%"


def test_all_within() -> None:
    page = budgets_page([BudgetResult(metric="params", spec="10M", status="ok", message="")])
    assert (page.badge_class, page.badge) == ("info", "all within")
