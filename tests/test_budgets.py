"""Budgets: parsing, configuration files, and checks against real reports."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from test_diff import BATCH, NARROW, WIDE, flops, pair, params, width_pair

from reporter.budgets import (
    Budget,
    check_budgets,
    collect_budgets,
    crossed,
    parse_budget,
)
from reporter.cli import main
from reporter.errors import UsageError
from reporter.report.profile import LatencyStats, TimingSection


@pytest.mark.parametrize(
    ("text", "metric", "limit", "relative"),
    [
        ("latency_ms=25", "latency_ms", 25.0, None),
        ("latency=25ms", "latency_ms", 25.0, None),
        ("latency=0.5s", "latency_ms", 500.0, None),
        ("params=10M", "params", 10e6, None),
        ("parameters=2.5k", "params", 2500.0, None),
        ("flops=1.5G", "flops", 1.5e9, None),
        ("memory=512MiB", "memory", 512 * 2**20, None),
        ("memory=2GB", "memory", 2e9, None),
        ("throughput=1k/s", "throughput", 1000.0, None),
        ("latency=+5%", "latency_ms", None, 0.05),
        ("flops=-10%", "flops", None, -0.10),
        ("p90=+2.5%", "latency_p90_ms", None, 0.025),
    ],
)
def test_parse_budget(text: str, metric: str, limit: float | None, relative: float | None) -> None:
    budget = parse_budget(text)
    assert budget.metric == metric
    assert budget.limit == (pytest.approx(limit) if limit is not None else None)
    assert budget.relative == (pytest.approx(relative) if relative is not None else None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency", "write NAME=VALUE"),
        ("speed=3", "unknown metric"),
        ("params=lots", "not a number"),
        ("latency_ms=3kg", "unknown unit"),
        ("memory=+x%", "percentage"),
    ],
)
def test_bad_budget_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_budget(text)


def test_pyproject_table_found_upwards_and_flags_override(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "x"
            [tool.perfreport.budgets]
            params = "1k"
            latency_ms = 25
            flops = "+0%"
            """
        )
    )
    deep = tmp_path / "models" / "vision"
    deep.mkdir(parents=True)
    found = {b.metric: b for b in collect_budgets([], None, deep)}
    assert found["params"].limit == 1000 and found["latency_ms"].limit == 25
    assert found["flops"].relative == 0.0
    overridden = {b.metric: b for b in collect_budgets(["params=5k"], None, deep)}
    assert overridden["params"].limit == 5000 and overridden["latency_ms"].limit == 25


def test_config_file_with_top_level_budgets(tmp_path: Path) -> None:
    config = tmp_path / "ci.toml"
    config.write_text('[budgets]\nmemory = "1MiB"\n')
    assert collect_budgets([], str(config)) == [Budget("memory", "1MiB", limit=2**20)]
    with pytest.raises(UsageError, match="no such file"):
        collect_budgets([], str(tmp_path / "nope.toml"))
    config.write_text("[budgets\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        collect_budgets([], str(config))


def test_no_pyproject_no_budgets(tmp_path: Path) -> None:
    assert collect_budgets([], None, Path("/")) == []


def test_absolute_budgets_on_real_reports() -> None:
    narrow, wide = pair()
    budgets = [parse_budget("params=5k"), parse_budget(f"flops={flops(WIDE)}")]
    assert crossed(check_budgets(narrow, budgets)) == []
    results = check_budgets(wide, budgets)
    assert [r.status for r in results] == ["crossed", "ok"]  # a limit equal to the value holds
    assert results[0].value == params(WIDE) and results[0].limit == 5000
    assert "params=5k" in results[0].message and "9.61 k" in results[0].message


def test_relative_budgets_need_and_use_the_baseline() -> None:
    narrow, wide = pair()
    budgets = [parse_budget("flops=+5%"), parse_budget("params=-50%")]
    with pytest.raises(UsageError, match="--baseline"):
        check_budgets(wide, budgets)
    results = check_budgets(wide, budgets, baseline=narrow)
    assert results[0].status == "crossed"
    assert results[0].limit == pytest.approx(flops(NARROW) * 1.05)
    assert results[0].baseline == flops(NARROW)
    # the narrow model against itself: params must halve, they did not
    assert check_budgets(narrow, budgets[1:], baseline=narrow)[0].status == "crossed"
    assert check_budgets(narrow, budgets[:1], baseline=wide)[0].status == "ok"


def test_timing_budgets_unmeasured_then_checked() -> None:
    narrow, _ = pair()
    budgets = [parse_budget("latency_ms=25"), parse_budget("throughput=1k")]
    assert [r.status for r in check_budgets(narrow, budgets)] == ["unmeasured", "unmeasured"]
    stats = LatencyStats(median=30.0, p90=31.0, p99=33.0, min=29.0, max=40.0)
    narrow.timing = TimingSection(latency_ms=stats, throughput=BATCH / 0.030, batch_size=BATCH)
    results = check_budgets(narrow, budgets)
    assert results[0].status == "crossed"  # 30 ms > 25 ms
    assert results[1].status == "crossed"  # 133 samples/s < 1000/s: throughput is a floor
    assert "at least" in results[1].message


def test_cli_run_with_budget_exits_1_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = width_pair()
    source = Path(json.loads(head.read_text())["model"]["source"])
    out = tmp_path / "run"
    args = [str(source), "-o", str(out), "--only", "summary,flops,memory"]
    code = main([*args, "--budget", "params=5k", "--budget", "flops=+5%", "--baseline", str(base)])
    err = capsys.readouterr().err
    assert code == 1
    assert "crosses budget params=5k" in " ".join(err.split())
    assert "crosses budget flops=+5%" in " ".join(err.split())
    saved = json.loads((out / "report.json").read_text())["budgets"]
    assert [(b["metric"], b["status"]) for b in saved] == [
        ("params", "crossed"),
        ("flops", "crossed"),
    ]
    assert "crossed" in (out / "report.md").read_text()
    assert 'id="budgets"' in (out / "report.html").read_text()


def test_cli_relative_budget_without_baseline_fails_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "never_run.py"
    model.write_text("raise SystemExit('the model must not be loaded')\n")
    code = main([str(model), "-o", str(tmp_path / "o"), "--budget", "latency=+5%"])
    assert code == 2
    assert "give --baseline BASE.json" in capsys.readouterr().err
    assert not (tmp_path / "o" / "report.json").exists()


def test_cli_diff_checks_budgets_on_head(capsys: pytest.CaptureFixture[str]) -> None:
    base, head = width_pair()
    assert main(["diff", str(base), str(head), "--budget", "params=10k"]) == 0
    assert main(["diff", str(base), str(head), "--budget", "params=+100%"]) == 1
    assert "crosses budget params=+100%" in " ".join(capsys.readouterr().err.split())
