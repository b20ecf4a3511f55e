"""Every rule is registered the same way, with one signature, and lives in reporter/rules."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.rules import RULES
from reporter.rules.registry import evidence, numbered


def test_every_rule_takes_the_report_and_thresholds_and_returns_findings() -> None:
    for rule_id, r in RULES.items():
        hints = typing.get_type_hints(r.func)
        params = [hints[name] for name in r.func.__code__.co_varnames[:2]]
        assert r.func.__code__.co_argcount == 2, rule_id
        assert params == [Report, dict[str, float]], rule_id
        returns = hints["return"]
        assert typing.get_origin(returns) is Iterable, (rule_id, returns)
        assert typing.get_args(returns) == (Finding,), rule_id


def test_every_rule_lives_in_the_rules_package() -> None:
    modules = {r.func.__module__ for r in RULES.values()}
    assert all(m.startswith("reporter.rules.") for m in modules), modules


def test_the_registry_order_is_the_order_of_findings_of_equal_severity() -> None:
    """launch-bound and host-sync keep their place among the profile's rules, and the
    trace's variants theirs among the trace's rules, though each pair shares one module."""
    order = list(RULES)
    assert order.index("memory-bound-ops") < order.index("launch-bound") < order.index("host-sync")
    assert order.index("host-sync") < order.index("throughput-still-rising")
    assert order.index("gpu-idle-host-wait") < order.index("gpu-launch-bound")
    assert order.index("gpu-launch-bound") < order.index("gpu-host-sync")
    assert order.index("gpu-host-sync") < order.index("gpu-pageable-memcpy")
    assert order[0] == "rank-straggler" and order[-1] == "trace-bad-events"


def test_evidence_keeps_order_and_drops_empty_values() -> None:
    assert list(evidence(b=1, a=None, c="x", **numbered("op", ["p", "q"]))) == [
        "b",
        "c",
        "op 1",
        "op 2",
    ]
    assert numbered("break", iter(["x"])) == {"break 1": "x"}
