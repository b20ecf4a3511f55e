"""Budgets: limits a run must stay within, for CI.

Written as ``--budget latency_ms=25``, ``--budget params=10M``, ``--budget latency=+5%``
(relative to ``--baseline BASE.json``), or as a ``[tool.perfreport.budgets]`` table in the
nearest pyproject.toml (or ``--config FILE``)::

    [tool.perfreport.budgets]
    latency_ms = 25          # median forward latency, ms
    params = "10M"
    memory = "512MiB"
    flops = "+0%"            # no more FLOPs than the baseline

Every metric is a ceiling except throughput, which is a floor (``throughput=1000`` means
at least 1000 samples/s; ``throughput=-5%`` means at most 5% below the baseline).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reporter import units as fmt
from reporter.config import perfreport_table
from reporter.diff import METRIC_BY_KEY, Metric
from reporter.errors import UsageError
from reporter.report import BudgetResult, Report
from reporter.report.enums import BudgetStatus

# Names people write for each metric.
ALIASES = {
    "params": "params",
    "parameters": "params",
    "flops": "flops",
    "forward_flops": "flops",
    "memory": "memory",
    "memory_bytes": "memory",
    "inference_memory": "memory",
    "training_memory": "training_memory",
    "latency": "latency_ms",
    "latency_ms": "latency_ms",
    "latency_median": "latency_ms",
    "latency_median_ms": "latency_ms",
    "p90": "latency_p90_ms",
    "latency_p90": "latency_p90_ms",
    "latency_p90_ms": "latency_p90_ms",
    "throughput": "throughput",
}
SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
BYTE_SUFFIXES = {
    "b": 1,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
NUMBER = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([a-z/]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    metric: str  # key in reporter.diff.METRICS
    spec: str  # as written
    limit: float | None = None  # absolute limit in the metric's unit
    relative: float | None = None  # +0.05 for "+5%": limit = baseline * (1 + relative)

    @property
    def label(self) -> str:
        return f"{self.metric}={self.spec}"


def parse_budget(text: str) -> Budget:
    """'latency_ms=25', 'params=10M', 'latency=+5%' -> Budget."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"--budget {text!r}: write NAME=VALUE, e.g. latency_ms=25 or params=10M")
    return make_budget(name.strip(), value.strip())


def make_budget(name: str, value: Any) -> Budget:
    key = ALIASES.get(name.lower())
    if key is None:
        raise UsageError(f"budget {name!r}: unknown metric; use one of {', '.join(ALIASES)}")
    metric = METRIC_BY_KEY[key]
    spec = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"budget {name}: {value!r} is not a number, e.g. 25, 10M or +5%")
    if spec.endswith("%"):
        try:
            relative = float(spec[:-1]) / 100
        except ValueError:
            relative = math.nan
        if not math.isfinite(relative):
            raise UsageError(f"budget {name}={spec}: write a percentage such as +5%")
        return Budget(key, spec, relative=relative)
    limit = parse_amount(spec, metric, name)
    if not (limit >= 0 and math.isfinite(limit)):
        # Only relative budgets may be negative (throughput=-5%); no count, size or time is.
        raise UsageError(f"budget {name}={spec}: give a finite limit of 0 or more")
    return Budget(key, spec, limit=limit)


def parse_amount(text: str, metric: Metric, name: str) -> float:
    """'10M' -> 1e7; '512MiB' -> 536870912 for byte metrics; '25ms' -> 25."""
    match = NUMBER.match(text)
    if match is None:
        raise UsageError(f"budget {name}={text}: not a number; write e.g. 25, 10M or 512MiB")
    number, suffix = float(match[1]), match[2].lower()
    if metric.unit == "bytes" and suffix in BYTE_SUFFIXES:
        return number * BYTE_SUFFIXES[suffix]
    if metric.unit == "ms" and suffix in ("ms", ""):
        return number
    if metric.unit == "ms" and suffix == "s":
        return number * 1000
    if metric.unit == "ms" and suffix == "us":
        return number / 1000
    if metric.unit == "per_s" and suffix.endswith("/s"):
        suffix = suffix[:-2]
    if metric.unit != "ms" and suffix in SUFFIXES:
        return number * SUFFIXES[suffix]
    raise UsageError(f"budget {name}={text}: unknown unit {match[2]!r} for {metric.label}")


# ------------------------------------------------------------------ configuration files
def budgets_from_table(table: dict[str, Any], path: Path | None) -> list[Budget]:
    """The [budgets] table of perfreport's settings (see reporter/config.py)."""
    found = table.get("budgets")
    if found is None:
        return []
    if not isinstance(found, dict):
        raise UsageError(f"{path}: [tool.perfreport.budgets] must be a table of NAME = VALUE")
    return [make_budget(str(k), v) for k, v in found.items()]


def collect_budgets(
    flags: list[str], config: str | None = None, search_from: Path | None = None
) -> list[Budget]:
    """Budgets from --config FILE (or the nearest pyproject.toml), then --budget flags; a
    flag overrides a file's budget on the same metric."""
    budgets: dict[str, Budget] = {}
    found = budgets_from_table(*perfreport_table(config, search_from or Path.cwd()))
    for budget in [*found, *(parse_budget(f) for f in flags)]:
        budgets[f"{budget.metric}{'%' if budget.relative is not None else ''}"] = budget
    return list(budgets.values())


# ------------------------------------------------------------------ checking
def check_budgets(
    report: Report, budgets: list[Budget], baseline: Report | None = None
) -> list[BudgetResult]:
    require_baseline(budgets, baseline)
    return [check_budget(report, b, baseline) for b in budgets]


def require_baseline(budgets: list[Budget], baseline: Report | None) -> None:
    """A relative budget (+5%) means nothing without a report to be relative to."""
    relative = [b.label for b in budgets if b.relative is not None]
    if relative and baseline is None:
        raise UsageError(
            f"budget {relative[0]} is relative: give --baseline BASE.json to compare with"
        )


def check_budget(report: Report, budget: Budget, baseline: Report | None) -> BudgetResult:
    metric = METRIC_BY_KEY[budget.metric]
    value = metric.read(report)
    base_value = metric.read(baseline) if baseline is not None else None
    result = BudgetResult(budget.metric, budget.spec, BudgetStatus.OK, "", value, None, base_value)
    if value is None:
        result.status = BudgetStatus.UNMEASURED
        result.message = (
            f"{budget.label}: unmeasured: {metric.label} was not measured in this run "
            "(a stage failed or was skipped), which counts as crossed"
        )
        return result
    if budget.relative is not None:
        if base_value is None:
            result.status = BudgetStatus.UNMEASURED
            result.message = (
                f"{budget.label}: unmeasured: the baseline has no {metric.label}, "
                "which counts as crossed"
            )
            return result
        result.limit = base_value * (1 + budget.relative)
        against = (
            f"baseline {show(metric, base_value)} {budget.spec} = {show(metric, result.limit)}"
        )
    else:
        result.limit = budget.limit
        against = show(metric, result.limit)
    crossed = value < result.limit if metric.higher_is_better else value > result.limit
    word = "at least" if metric.higher_is_better else "at most"
    if crossed:
        result.status = BudgetStatus.CROSSED
        result.message = (
            f"{metric.label} {show(metric, value)} crosses budget {budget.label} ({word} {against})"
        )
    else:
        result.message = f"{metric.label} {show(metric, value)} within {budget.label} ({against})"
    return result


def show(metric: Metric, value: float | None) -> str:
    """A metric's value as people read it."""
    return {
        "count": fmt.count,
        "flops": fmt.flops,
        "bytes": fmt.nbytes,
        "ms": fmt.ms,
        "per_s": lambda v: f"{fmt.count(v)}/s",
    }[metric.unit](value)


def crossed(results: list[BudgetResult]) -> list[BudgetResult]:
    """The budgets that fail the run: crossed, or unmeasured (a budget on a figure that a
    failed or skipped stage never measured must not pass silently)."""
    return [r for r in results if r.status in (BudgetStatus.CROSSED, BudgetStatus.UNMEASURED)]
