"""The budgets table, decided and formatted for templates/budgets.html.j2: the badge and
each row's class. Text is plain: the template escapes it."""

from __future__ import annotations

from dataclasses import dataclass

from reporter.report import BudgetResult
from reporter.report.enums import BudgetStatus

ROW_CLASS = {BudgetStatus.CROSSED: "failed", BudgetStatus.UNMEASURED: "skipped"}


@dataclass(frozen=True)
class BudgetRow:
    row_class: str  # "failed" crossed, "skipped" unmeasured, "" within
    budget: str  # "latency_ms=+5%", as the user wrote it
    status: str
    message: str


@dataclass(frozen=True)
class BudgetsPage:
    badge_class: str  # "critical" when a budget is crossed, else "info"
    badge: str
    rows: tuple[BudgetRow, ...]


def budgets_page(budgets: list[BudgetResult]) -> BudgetsPage:
    crossed = sum(1 for b in budgets if b.status == BudgetStatus.CROSSED)
    return BudgetsPage(
        badge_class="critical" if crossed else "info",
        badge=f"{crossed} crossed" if crossed else "all within",
        rows=tuple(
            BudgetRow(ROW_CLASS.get(b.status, ""), f"{b.metric}={b.spec}", b.status, b.message)
            for b in budgets
        ),
    )
