"""Deployment readiness: export and compile checks, and their findings both ways."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES
from helpers import report_for, rule_ids

DATA_DEPENDENT = """
import torch
from torch import nn

class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.sum().item() > 0:
            y = y * 2
        return y

def example_inputs():
    return torch.randn(2, 4)
"""


def test_data_dependent_branch_blocks_export_and_breaks_graph(tmp_path: Path) -> None:
    path = tmp_path / "gate.py"
    path.write_text(DATA_DEPENDENT)
    report = report_for(path, tmp_path, "deploy")
    deploy = report.deploy
    assert deploy.export.status == "failed"
    assert deploy.export.location == f"{path}:12 in forward"  # the `if ... .item()` line
    assert deploy.compile.status == "ok"
    assert len(deploy.graph_breaks) == 1
    assert "item()" in deploy.graph_breaks[0].reason
    assert deploy.graph_breaks[0].location == f"{path}:12 in forward"
    assert {"export-fails", "graph-breaks"} <= rule_ids(report)
    finding = next(f for f in report.findings if f.rule == "export-fails")
    assert finding.evidence["location"].endswith("gate.py:12 in forward")


def test_plain_model_exports_and_compiles_whole(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mlp.py", tmp_path, "deploy")
    assert report.deploy.export.status == "ok"
    assert report.deploy.graph_breaks == []
    assert report.deploy.graph_count == 1
    assert not {"export-fails", "graph-breaks"} & rule_ids(report)


def _deploy_report(onnx_status: str, breaks: int):  # noqa: ANN202
    from reporter.report import ModelInfo, Report
    from reporter.report.deploy import CheckResult, DeploySection, GraphBreak

    report = Report(model=ModelInfo(class_name="X", source="x.py"))
    report.deploy = DeploySection(
        export=CheckResult("ok"),
        compile=CheckResult("ok"),
        onnx=CheckResult(
            onnx_status,
            error="UnsupportedOperatorError: aten::foo" if onnx_status == "failed" else "",
        ),
        graph_count=breaks + 1,
        graph_breaks=[GraphBreak(f"reason {i}", f"m.py:{i} in forward") for i in range(breaks)],
    )
    return report


def test_onnx_and_graph_break_rules_both_ways() -> None:
    from reporter.rules import run_rules

    fired = {f.rule for f in run_rules(_deploy_report("failed", 2))}
    assert {"onnx-export-fails", "graph-breaks"} <= fired
    quiet = {f.rule for f in run_rules(_deploy_report("skipped", 0))}
    assert not {"onnx-export-fails", "graph-breaks", "export-fails"} & quiet
    assert "onnx-export-fails" not in {f.rule for f in run_rules(_deploy_report("ok", 0))}


def test_deploy_is_opt_in(cli, tmp_path: Path) -> None:  # noqa: ANN001
    from reporter.cli import select_stages
    from reporter.report import STAGE_NAMES

    assert "deploy" not in select_stages(None, None)
    assert select_stages(None, None, deploy=True) == [s for s in STAGE_NAMES]
    assert select_stages("summary,deploy", None) == ["summary", "deploy"]
    out = tmp_path / "out"
    assert cli(SAMPLES / "mlp.py", "-o", out, "--only", "summary", "--format", "json").code == 0
    status = json.loads((out / "report.json").read_text())["stages"]["deploy"]
    assert status == {**status, "status": "skipped", "reason": "opt-in: pass --deploy"}
