"""report.json is input: a wrong type, deep nesting, NaN or a list for an object is one
line and exit 2 (exit 1 is `diff --fail-on-regression`'s "regression found")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reporter.diff import Metric, compare_metric
from reporter.report import ModelInfo, Report, report_to_json

GOOD = json.loads(report_to_json(Report(model=ModelInfo(class_name="M", source="m.py"))))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _with(**fields: object) -> str:
    return json.dumps({**GOOD, **fields})


BAD = {
    "wrong type": _with(model={"class_name": 5, "source": "m.py"}),
    "list for an object": _with(model=[]),
    "object for a list": _with(findings={}),
    "deep nesting": _with(options="@").replace('"@"', "[" * 100_000 + "]" * 100_000),
    "NaN": _with(schema_version="@").replace('"@"', "NaN"),
    "infinity": _with(flops="@").replace('"@"', "1e999"),
    "not an object": "[1, 2]",
    "string schema": _with(schema_version="1"),
}


@pytest.mark.parametrize("name", BAD)
def test_render_refuses_a_bad_report_in_one_line(cli, tmp_path, name) -> None:
    path = _write(tmp_path / "report.json", BAD[name])
    result = cli("render", path, "-o", tmp_path / "out")
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize("name", ["wrong type", "deep nesting", "list for an object"])
def test_diff_exits_2_not_1_on_a_bad_report(cli, tmp_path, name) -> None:
    good = _write(tmp_path / "good.json", json.dumps(GOOD))
    bad = _write(tmp_path / "bad.json", BAD[name])
    result = cli("diff", good, bad, "--fail-on-regression")
    assert result.code == 2, result.err
    assert "Traceback" not in result.err


def test_a_good_report_still_reads(cli, tmp_path) -> None:
    path = _write(tmp_path / "report.json", json.dumps(GOOD))
    assert cli("render", path).code == 0


@pytest.mark.parametrize("values", [(1.0, float("nan")), (float("nan"), 1.0), (2.0, float("inf"))])
def test_nan_in_a_diff_is_never_better_or_worse(values) -> None:
    base, head = (Report(model=ModelInfo(class_name="M", source="m.py")) for _ in range(2))
    reads = dict(zip((id(base), id(head)), values, strict=True))
    for higher_is_better in (False, True):
        metric = Metric("x", "X", "ms", lambda r: reads[id(r)], higher_is_better=higher_is_better)
        change = compare_metric(metric, base, head, (None, None))
        assert change is not None
        assert change.verdict not in ("better", "worse"), change
        assert "not a finite number" in change.note  # said, not judged
