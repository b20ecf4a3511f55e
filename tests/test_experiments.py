"""--experiments: every fix is timed against the unchanged model, outputs compared."""

from __future__ import annotations

from pathlib import Path

from conftest import SAMPLES
from helpers import report_for

from reporter.profiling.stats import quantile
from reporter.report import Report
from reporter.report.experiments import Experiment, ExperimentsSection
from reporter.rules import run_rules

# The fixes; the deployment variants (exports, quantisation) have tests of their own.
FIXES = [
    "inference_mode",
    "channels_last",
    "bf16_autocast",
    "larger_batch",
    "int8_dynamic",
    "torch_compile",
    "cudnn_benchmark",
    "tf32",
]
OPTIONS = {"stage_options": {"experiments": {"enabled": True, "seconds": 0.2, "only": FIXES}}}


def test_cnn_experiments(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, "experiments", **OPTIONS)
    by_name = {e.name: e for e in report.experiments.experiments}
    for name in (
        "inference_mode",
        "channels_last",
        "larger_batch",
        "int8_dynamic",
        "bf16_autocast",
    ):
        assert by_name[name].status == "measured", (name, by_name[name].reason)
    assert (
        by_name["torch_compile"].status == "skipped"
        and "--experiment-compile" in by_name["torch_compile"].reason
    )
    assert by_name["cudnn_benchmark"].status == "skipped" and by_name["tf32"].status == "skipped"
    for e in by_name.values():
        if e.status != "measured":
            continue
        per_before, per_after = e.samples_per_call
        before = [x / per_before for x in e.baseline_samples_ms]
        after = [x / per_after for x in e.variant_samples_ms]
        assert e.speedup == quantile(before, 0.5) / quantile(after, 0.5)
        assert e.speedup_low <= e.speedup <= e.speedup_high
        assert e.baseline_ms == quantile(e.baseline_samples_ms, 0.5)
    assert by_name["inference_mode"].max_abs_error == 0.0  # same kernels, same numbers
    assert by_name["channels_last"].outputs_match
    assert by_name["larger_batch"].samples_per_call == [8, 16]
    quant = by_name["int8_dynamic"]
    assert quant.size_after_bytes < quant.size_before_bytes / 2  # fc1's 9216x128 weights in int8


def test_transformer_experiments(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "gpt_decoder.py", tmp_path, "experiments", **OPTIONS)
    by_name = {e.name: e for e in report.experiments.experiments}
    assert (
        by_name["channels_last"].status == "skipped" and "Conv2d" in by_name["channels_last"].reason
    )
    assert by_name["int8_dynamic"].status == "measured"
    assert by_name["bf16_autocast"].status == "measured"


def test_off_by_default(tmp_path: Path) -> None:
    import pytest

    from reporter.stages import SkipStage

    with pytest.raises(SkipStage, match="--experiments"):
        report_for(SAMPLES / "mlp.py", tmp_path, "experiments")


def _report(**fields) -> Report:  # noqa: ANN003
    from reporter.report import ModelInfo

    base = dict(
        name="channels_last",
        title="channels_last memory format",
        status="measured",
        baseline_ms=10.0,
        variant_ms=6.0,
        speedup=1.67,
        speedup_low=1.5,
        speedup_high=1.8,
        max_abs_error=1e-6,
        tolerance=1e-4,
        outputs_match=True,
    )
    base.update(fields)
    report = Report(model=ModelInfo(class_name="X", source="x.py"))
    report.experiments = ExperimentsSection(experiments=[Experiment(**base)])
    return report


def test_speedup_rule_both_ways() -> None:
    assert [f.rule for f in run_rules(_report()) if f.rule == "measured-speedup"] == [
        "measured-speedup"
    ]
    # a range that reaches below the threshold is noise, not a speedup
    assert not [f for f in run_rules(_report(speedup_low=0.98)) if f.rule == "measured-speedup"]
    # faster but wrong is no fix
    assert not [f for f in run_rules(_report(outputs_match=False)) if f.rule == "measured-speedup"]


def test_bn_fold_experiment(tmp_path: Path) -> None:
    """Each batch norm that reads a convolution's output alone is folded into it on a copy;
    the finding quotes the measurement."""
    from test_rules_structure import CONV_BN

    path = tmp_path / "convbn.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        + CONV_BN
        + "\ndef example_inputs():\n    return torch.randn(2, 3, 16, 16)\n"
    )
    options = {"stage_options": {"experiments": {"enabled": True, "seconds": 0.2}}}
    options["stage_options"]["experiments"]["only"] = ["bn_fold"]
    report = report_for(path, tmp_path, "summary", "experiments", **options)
    (e,) = report.experiments.experiments
    assert e.name == "bn_fold" and e.status == "measured", e.reason
    assert e.outputs_match and e.max_abs_error < 1e-4
    assert e.baseline_ms == quantile(e.baseline_samples_ms, 0.5)
    assert e.variant_ms == quantile(e.variant_samples_ms, 0.5)
    finding = next(f for f in report.findings if f.rule == "conv-bn-fold")
    assert finding.evidence["experiment"].startswith(f"bn_fold measured {e.speedup:.2f}×")
    assert "outputs match" in finding.evidence["experiment"]
    assert finding.severity == ("warning" if e.speedup_low > 1.0 else "info")
    # the experiments are skipped, with the reason, where there is nothing to fold
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, "experiments", **options)
    (e,) = report.experiments.experiments
    assert e.status == "skipped" and "batch norm" in e.reason


def test_bn_fold_quoted_when_it_did_not_run() -> None:
    from reporter.report import SummarySection

    report = _report(name="bn_fold", status="failed", reason="RuntimeError: boom")
    report.summary = SummarySection(depth=1, conv_bn_pairs=[["c", "b"]])
    finding = next(f for f in run_rules(report) if f.rule == "conv-bn-fold")
    assert finding.evidence["experiment"] == "bn_fold failed: RuntimeError: boom"
    assert finding.severity == "info"
