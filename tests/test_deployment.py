"""Deployment variants: each precision and runtime measured, or skipped with its reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from conftest import SAMPLES
from helpers import report_for

from reporter.report import ModelInfo, Report
from reporter.report.experiments import Experiment, ExperimentsSection
from reporter.rules import run_rules
from reporter.rules.deployment import FASTER, NOT_FASTER, OUTSIDE

DEPLOYMENT = [
    "bf16_autocast",
    "bf16_cast",
    "fp16_autocast",
    "int8_dynamic",
    "int8_weight_only",
    "int4_weight_only",
    "onnxruntime",
]
OPTIONS = {"stage_options": {"experiments": {"enabled": True, "seconds": 0.1, "only": DEPLOYMENT}}}

CLASSIFIER = """
import torch
from torch import nn

def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

def example_inputs():
    return torch.randn(16, 64)

def eval_batches():
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x = torch.randn(32, 64, generator=g)
        yield x, torch.randint(0, 10, (32,), generator=g)
"""


@pytest.fixture(scope="module")
def mlp_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    tmp = tmp_path_factory.mktemp("deploy")
    return report_for(SAMPLES / "mlp.py", tmp, "experiments", **OPTIONS)


def test_every_variant_is_measured_or_skipped_with_a_reason(mlp_report: Report) -> None:
    by_name = {e.name: e for e in mlp_report.experiments.experiments}
    assert set(by_name) == set(DEPLOYMENT)
    for e in by_name.values():
        assert e.deployment
        assert e.status in ("measured", "skipped"), (e.name, e.reason)
        assert e.status == "measured" or e.reason
    assert (
        by_name["fp16_autocast"].status == "skipped" and "CUDA" in by_name["fp16_autocast"].reason
    )
    for name in ("bf16_autocast", "bf16_cast", "int8_dynamic", "int8_weight_only", "onnxruntime"):
        assert by_name[name].status == "measured", (name, by_name[name].reason)
    # Every measured variant carries a verdict from the deployment-choice rule.
    assert all(e.verdict for e in by_name.values())


def test_bf16_differs_from_float32_but_within_tolerance(mlp_report: Report) -> None:
    by_name = {e.name: e for e in mlp_report.experiments.experiments}
    for name in ("bf16_autocast", "bf16_cast"):
        e = by_name[name]
        assert 0 < e.max_rel_error < 0.05, (name, e.max_rel_error)
        assert not e.verdict.startswith(OUTSIDE)


def test_int8_shrinks_the_linear_weights_about_four_times(mlp_report: Report) -> None:
    from sample_models.mlp import build_model

    model = build_model()
    linear_bytes = sum(p.numel() * 4 for p in model.parameters())
    e = {e.name: e for e in mlp_report.experiments.experiments}["int8_dynamic"]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert e.size_before_bytes == buffer.tell()
    # int8 weights: a quarter of the float32 bytes, plus scales and serialisation overhead.
    assert linear_bytes / 4 < e.size_after_bytes < linear_bytes / 3


def test_onnxruntime_matches_the_model(mlp_report: Report) -> None:
    e = {e.name: e for e in mlp_report.experiments.experiments}["onnxruntime"]
    assert e.max_abs_error is not None and e.max_abs_error < 1e-4
    assert e.top1_agreement == 1.0


def test_accuracy_delta_against_an_independent_evaluation(tmp_path: Path) -> None:
    path = tmp_path / "clf.py"
    path.write_text(CLASSIFIER)
    options = {
        "stage_options": {"experiments": {"enabled": True, "seconds": 0.1, "only": ["bf16_cast"]}}
    }
    report = report_for(path, tmp_path, "experiments", **options)
    e = report.experiments.experiments[0]
    namespace: dict = {}
    exec(CLASSIFIER, namespace)  # the same file, evaluated here by hand
    model = namespace["build_model"]().eval()
    low = namespace["build_model"]().eval().to(torch.bfloat16)

    def accuracy(m: torch.nn.Module, dtype: torch.dtype) -> float:
        right = total = 0
        with torch.no_grad():
            for x, y in namespace["eval_batches"]():
                right += int((m(x.to(dtype)).argmax(dim=1) == y).sum())
                total += len(y)
        return right / total

    assert e.accuracy_delta == pytest.approx(
        accuracy(low, torch.bfloat16) - accuracy(model, torch.float32)
    )


def _experiment(
    name: str, speedup: float, low: float, error: float, top1: float | None = None
) -> Experiment:
    return Experiment(
        name,
        name,
        "measured",
        baseline_ms=2.0,
        variant_ms=2.0 / speedup,
        speedup=speedup,
        speedup_low=low,
        speedup_high=speedup * 1.1,
        max_abs_error=error,
        max_rel_error=error,
        top1_agreement=top1,
        deployment=True,
        snippet=f"# {name}",
    )


def test_the_recommendation_is_the_fastest_variant_inside_the_tolerances() -> None:
    section = ExperimentsSection(
        experiments=[
            _experiment("bf16_cast", 1.8, 1.5, 0.01),
            _experiment("int8_dynamic", 3.0, 2.5, 0.2),  # fastest, but outside the error
            _experiment("int4_weight_only", 2.2, 1.9, 0.02, top1=0.9),  # flips top-1 classes
            _experiment("onnxruntime", 1.2, 0.9, 1e-6),  # not measurably faster
            Experiment("fp16_autocast", "fp16", "skipped", "CUDA only", deployment=True),
        ]
    )
    report = Report(model=ModelInfo("M", "m.py"), experiments=section)
    (finding,) = [f for f in run_rules(report) if f.rule == "deployment-choice"]
    assert finding.evidence["variant"] == "bf16_cast" and finding.snippet == "# bf16_cast"
    verdicts = {e.name: e.verdict for e in section.experiments}
    assert verdicts["bf16_cast"] == FASTER and verdicts["onnxruntime"] == NOT_FASTER
    assert verdicts["int8_dynamic"].startswith(OUTSIDE)
    assert "top-1" in verdicts["int4_weight_only"]
    assert verdicts["fp16_autocast"] == "skipped"
    # A looser tolerance, as a user sets in [tool.perfreport.thresholds], admits int8.
    report = Report(model=ModelInfo("M", "m.py"), experiments=section)
    (finding,) = [
        f for f in run_rules(report, {"deploy.max_rel_error": 0.5}) if f.rule == "deployment-choice"
    ]
    assert finding.evidence["variant"] == "int8_dynamic"


def test_the_table_is_in_html_and_markdown(mlp_report: Report) -> None:
    from reporter.render.html import render_html
    from reporter.render.markdown import render_markdown

    assert "Deployment options" in render_html(mlp_report)
    md = render_markdown(mlp_report)
    assert "| Deployment option |" in md and "int8 weight-only" in md
