"""The value sets of the report's status and severity fields, in one place.

Members are StrEnums: each is its string, so it compares equal to the plain string read
back from report.json and is written to JSON as that string (the JSON does not change).
The report's fields stay typed ``str``; code compares and assigns these members.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """How a stage ended (``StageStatus.status``), or a deploy check."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Severity(StrEnum):
    """A finding's severity. Declared from least to most severe: that order is the one
    every list, count and ``--fail-on`` comparison uses."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class BudgetStatus(StrEnum):
    """A budget's outcome (``BudgetResult.status``)."""

    OK = "ok"
    CROSSED = "crossed"
    UNMEASURED = "unmeasured"


SEVERITIES: tuple[Severity, ...] = tuple(Severity)  # least to most severe
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}  # info 0 .. critical 2
