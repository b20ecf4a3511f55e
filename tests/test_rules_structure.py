"""Each static rule fires on a model built to trigger it and stays quiet on one that is fine."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES
from helpers import report_for, rule_ids

from reporter.render.format import percent
from reporter.report import OpCount
from reporter.rules import RULES, run_rules

STATIC = ("summary", "flops", "memory")


def _model(tmp: Path, body: str, inputs: str = "torch.randn(4, 16)") -> Path:
    path = tmp / "m.py"
    path.write_text(
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
        + body
        + f"\n\ndef example_inputs():\n    return {inputs}\n"
    )
    return path


def test_dominant_layer_fires_on_mnist_fc1(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, *STATIC)
    finding = next(f for f in report.findings if f.rule == "dominant-layer")
    assert finding.target == "fc1"
    assert finding.evidence["parameters"] == "1,179,776 of 1,199,882"
    assert finding.evidence["sizes"] == "9216 → 128"
    assert finding.recommendation and finding.snippet


def test_dominant_layer_quiet_on_resnet(tmp_path: Path) -> None:
    assert "dominant-layer" not in rule_ids(report_for(SAMPLES / "resnet18.py", tmp_path, *STATIC))


def test_double_softmax(tmp_path: Path) -> None:
    body = """
def build_model():
    return nn.Sequential(nn.Linear(16, 4), nn.LogSoftmax(dim=1))

def loss_fn(out, x):
    return F.cross_entropy(out, torch.zeros(out.shape[0], dtype=torch.long))
"""
    assert "double-softmax" in rule_ids(report_for(_model(tmp_path, body), tmp_path, *STATIC))
    # the MNIST CNN ends in log_softmax but its loss is nll_loss: correct
    assert "double-softmax" not in rule_ids(report_for(SAMPLES / "mnist_cnn.py", tmp_path, *STATIC))
    # the LSTM returns softmaxed probs too, but its loss takes the raw logits: correct
    assert "double-softmax" not in rule_ids(
        report_for(SAMPLES / "lstm_classifier.py", tmp_path, *STATIC)
    )
    # the same model with the loss on the probabilities is the bug
    bad = (
        (SAMPLES / "lstm_classifier.py")
        .read_text()
        .replace(
            'F.cross_entropy(output["logits"], targets)',
            'F.cross_entropy(output["probs"], targets)',
        )
        .replace(
            'nn.functional.cross_entropy(output["logits"], targets)',
            'nn.functional.cross_entropy(output["probs"], targets)',
        )
    )
    path = tmp_path / "lstm_bad.py"
    path.write_text(bad)
    assert "double-softmax" in rule_ids(report_for(path, tmp_path, *STATIC))


def test_train_mode_at_build(tmp_path: Path) -> None:
    assert "train-mode-at-build" in rule_ids(
        report_for(SAMPLES / "mnist_cnn.py", tmp_path, "summary")
    )
    body = "def build_model():\n    return nn.Sequential(nn.Linear(16, 4), nn.Dropout()).eval()"
    assert "train-mode-at-build" not in rule_ids(
        report_for(_model(tmp_path, body), tmp_path, "summary")
    )


def test_float64(tmp_path: Path) -> None:
    path = SAMPLES / "mlp.py"
    assert "float64-parameters" in rule_ids(report_for(path, tmp_path, "summary", dtype="float64"))
    assert "float64-parameters" not in rule_ids(report_for(path, tmp_path, "summary"))


@pytest.mark.parametrize(
    ("width", "device", "fires"),
    [(100, "cuda:0", True), (128, "cuda:0", False), (100, "cpu", False)],
)
def test_tensor_core_alignment(tmp_path: Path, width: int, device: str, fires: bool) -> None:
    body = f"def build_model():\n    return nn.Sequential(nn.Linear(16, {width}), nn.ReLU(), nn.Linear({width}, 8))"
    report = report_for(_model(tmp_path, body), tmp_path, "summary", "flops")
    report.model.device = device  # rules read only the report: as if it had run on a GPU
    assert ("tensor-core-alignment" in rule_ids_after(report)) is fires


def rule_ids_after(report) -> set[str]:  # noqa: ANN001
    return {f.rule for f in run_rules(report)}


def test_forward_warnings(tmp_path: Path) -> None:
    body = "def build_model():\n    return nn.Sequential(nn.Linear(16, 8), nn.Dropout2d()).eval()"
    report = report_for(_model(tmp_path, body), tmp_path, "summary")
    finding = next(f for f in report.findings if f.rule == "forward-warnings")
    assert (
        "Dropout2d" in " ".join(finding.evidence.values())
        or "dropout2d" in str(finding.evidence).lower()
    )
    assert "forward-warnings" not in rule_ids(report_for(SAMPLES / "mlp.py", tmp_path, "summary"))


def test_nonfinite_output(tmp_path: Path) -> None:
    body = """
class Div(nn.Module):
    def forward(self, x):
        return x / torch.zeros_like(x)
"""
    report = report_for(_model(tmp_path, body), tmp_path, "summary")
    finding = next(f for f in report.findings if f.rule == "nonfinite-output")
    assert finding.severity == "critical"
    assert finding.evidence["nonfinite_elements"] == f"{4 * 16:,}"
    assert "nonfinite-output" not in rule_ids(report_for(SAMPLES / "mlp.py", tmp_path, "summary"))


def test_unused_parameters(tmp_path: Path) -> None:
    body = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(16, 4)
        self.spare = nn.Linear(16, 4)

    def forward(self, x):
        return self.used(x)
"""
    report = report_for(_model(tmp_path, body), tmp_path, *STATIC)
    finding = next(f for f in report.findings if f.rule == "unused-parameters")
    assert finding.evidence["parameters"] == "spare.weight, spare.bias"
    assert "unused-parameters" not in rule_ids(report_for(SAMPLES / "mlp.py", tmp_path, *STATIC))


def test_untied_duplicates(tmp_path: Path) -> None:
    body = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.head = nn.Linear(16, 50, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(self.emb.weight)  # equal, but not tied

    def forward(self, x):
        return self.head(self.emb(x))
"""
    path = _model(tmp_path, body, "torch.randint(0, 50, (2, 5))")
    finding = next(
        f for f in report_for(path, tmp_path, "summary").findings if f.rule == "untied-duplicates"
    )
    assert finding.evidence["groups"] == "emb.weight = head.weight"
    assert finding.evidence["duplicated_parameters"] == f"{50 * 16:,}"
    # tied weights (one tensor) are not duplicates
    assert "untied-duplicates" not in rule_ids(
        report_for(SAMPLES / "gpt_decoder.py", tmp_path, "summary")
    )


def test_flops_not_counted(tmp_path: Path) -> None:
    # Every heavy op that runs on CPU has a formula now: add a CUDA run's, where
    # nn.LSTMCell runs as aten._thnn_fused_lstm_cell, which has none.
    report = report_for(SAMPLES / "lstm_classifier.py", tmp_path, "flops")
    assert "flops-not-counted" not in rule_ids(report)
    report.flops.uncounted_ops.insert(0, OpCount(op="aten._thnn_fused_lstm_cell", calls=40))
    finding = next(f for f in run_rules(report) if f.rule == "flops-not-counted")
    assert finding.evidence["op 1"] == "aten._thnn_fused_lstm_cell, 40 call(s)"
    assert "flops-not-counted" not in rule_ids(report_for(SAMPLES / "mlp.py", tmp_path, "flops"))


def test_uncounted_op_flagged_by_its_measured_time(tmp_path: Path) -> None:
    """torch.cdist runs as aten._euclidean_dist, which has no formula and no telling name:
    the profile shows it takes most of the op time."""
    body = (
        "class Distances(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(64, 64)\n\n"
        "    def forward(self, x):\n"
        "        y = self.proj(x)\n"
        "        return torch.cdist(y, y)\n\n\n"
        "def build_model():\n"
        "    return Distances()"
    )
    path = _model(tmp_path, body, "torch.randn(1500, 64)")
    report = report_for(path, tmp_path, "flops", "profile")
    op = "aten._euclidean_dist"
    assert op in {o.op for o in report.flops.uncounted_ops}
    timed = next(o for o in report.profile.ops_by_name if o.name == "aten::_euclidean_dist")
    # its total time: the matrix product and norms inside it are not counted either
    share = timed.total_us / sum(o.self_us for o in report.profile.ops_by_name)
    assert share > 0.05
    finding = next(f for f in report.findings if f.rule == "flops-not-counted")
    assert finding.evidence["op 1"] == f"{op}, 1 call(s), {percent(share)} of op time"
    # without a profile the name gives no hint: nothing to flag
    assert "flops-not-counted" not in rule_ids(report_for(path, tmp_path, "flops"))


def test_training_does_not_fit(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mlp.py", tmp_path, *STATIC)
    report.environment.device_memory_bytes = 4 * 2**30
    assert "training-does-not-fit" not in rule_ids_after(report)
    report.environment.device_memory_bytes = report.memory.training.total_bytes["adam"] // 2
    assert "training-does-not-fit" in rule_ids_after(report)


def test_activations_dominate(tmp_path: Path) -> None:
    body = "def build_model():\n    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))"
    path = _model(tmp_path, body, "torch.randn(8, 3, 128, 128)")
    assert "activations-dominate" in rule_ids(report_for(path, tmp_path, *STATIC))
    assert "activations-dominate" not in rule_ids(report_for(SAMPLES / "mlp.py", tmp_path, *STATIC))


def test_every_finding_has_evidence_and_advice(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, *STATIC)
    assert report.findings
    for f in report.findings:
        assert f.rule in RULES and f.severity in ("info", "warning", "critical")
        assert f.evidence and f.recommendation and f.title
