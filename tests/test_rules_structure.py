"""Each static rule fires on a model built to trigger it and stays quiet on one that is fine."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES
from helpers import report_for, rule_ids

from reporter.render.format import percent
from reporter.report import OpCount
from reporter.report.profile import OpTime, ProfileSection
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


def test_dominant_layer_advice_for_a_cnn_head_is_computed(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, "summary")
    finding = next(f for f in report.findings if f.rule == "dominant-layer")
    assert finding.severity == "warning"
    # fc1 reads conv2's 64 channels on a 12x12 map (after max pooling), flattened
    assert finding.evidence["fed_by"].startswith("a flattened feature map 8 × 64 × 12 × 12")
    assert "nn.AdaptiveAvgPool2d(1)" in finding.snippet
    assert "nn.Linear(64, 128)" in finding.snippet
    assert f"{64 * 128 + 128:,} parameters instead of {9216 * 128 + 128:,}" in (
        finding.recommendation
    )


TIED_LM = """
class TinyLM(nn.Module):
    def __init__(self, vocab=4000, dim=32, tied=True):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.block = nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(dim, vocab, bias=False)
        if tied:
            self.head.weight = self.emb.weight

    def forward(self, ids):
        return self.head(self.block(self.emb(ids)))

def build_model():
    return TinyLM()
"""


def test_dominant_layer_tied_vocabulary_is_info(tmp_path: Path) -> None:
    path = _model(tmp_path, TIED_LM, "torch.randint(0, 4000, (2, 16))")
    report = report_for(path, tmp_path, "summary")
    finding = next(f for f in report.findings if f.rule == "dominant-layer")
    assert finding.severity == "info" and finding.target == "emb"
    assert finding.evidence["parameters"].startswith(f"{4000 * 32:,} of")
    assert "tied with head.weight" in finding.evidence["fed_by"]
    assert "AdaptiveAvgPool" not in (finding.snippet or "")
    # a separate output projection to the same vocabulary: info, suggesting to tie
    untied = TIED_LM.replace("dim, vocab, bias=False", "2 * dim, vocab")
    untied = untied.replace("self.head(self.block(", "self.head(torch.cat([self.block(")
    untied = untied.replace("self.emb(ids)))", "self.emb(ids))] * 2, -1))")
    untied = untied.replace("return TinyLM()", "return TinyLM(tied=False)")
    report = report_for(
        _model(tmp_path, untied, "torch.randint(0, 4000, (2, 16))"), tmp_path, "summary"
    )
    finding = next(f for f in report.findings if f.rule == "dominant-layer")
    assert finding.target == "head" and finding.severity == "info"
    assert finding.evidence["fed_by"] == "its output is the vocabulary of `emb`"
    assert "tying" in finding.recommendation


def test_dominant_layer_fed_by_roi_pooling_or_the_input(tmp_path: Path) -> None:
    roi_head = """
class RoIPool(nn.Module):  # stands for torchvision's MultiScaleRoIAlign: (K, C, 7, 7)
    def forward(self, feats):
        return nn.functional.adaptive_max_pool2d(feats, 7).repeat(4, 1, 1, 1)

class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 64, 3, padding=1)
        self.box_roi_pool = RoIPool()
        self.fc6 = nn.Linear(64 * 7 * 7, 256)
        self.cls = nn.Linear(256, 5)

    def forward(self, x):
        return self.cls(self.fc6(self.box_roi_pool(self.backbone(x)).flatten(1)))

def build_model():
    return Head()
"""
    report = report_for(
        _model(tmp_path, roi_head, "torch.randn(1, 3, 32, 32)"), tmp_path, "summary"
    )
    finding = next(f for f in report.findings if f.rule == "dominant-layer")
    assert finding.target == "fc6" and finding.severity == "info"
    assert finding.evidence["fed_by"] == "RoI pooling 4 × 64 × 7 × 7 from `box_roi_pool` (RoIPool)"
    assert "AdaptiveAvgPool" not in (finding.snippet or "")
    # an MLP on raw pixels: its first layer follows the input's size
    report = report_for(SAMPLES / "mlp.py", tmp_path, "summary")
    finding = next(f for f in report.findings if f.rule == "dominant-layer")
    assert finding.severity == "info"
    assert finding.evidence["fed_by"] == "the flattened model input args[0] (32 × 1 × 28 × 28)"


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


CLASSIFIER = """
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return F.softmax(self.body(x), dim=1)

def build_model():
    return Classifier()
"""
CE_LOSS = """
def loss_fn(out, x):
    return F.cross_entropy(out, torch.zeros(out.shape[0], dtype=torch.long))
"""


def test_a_classifier_returning_probabilities(tmp_path: Path) -> None:
    found = {
        f.rule: f for f in report_for(_model(tmp_path, CLASSIFIER), tmp_path, *STATIC).findings
    }
    assert found["probabilities-output"].severity == "warning"
    assert found["probabilities-output"].evidence["final_op"] == "aten._softmax"
    assert found["probabilities-output"].evidence["loss_fn"] == "none in the model file"
    assert "double-softmax" not in found
    # the loss proves it: cross_entropy on the probabilities is critical, and said once
    path = _model(tmp_path, CLASSIFIER + CE_LOSS)
    found = {f.rule: f for f in report_for(path, tmp_path, *STATIC).findings}
    assert found["double-softmax"].severity == "critical"
    assert "probabilities-output" not in found
    # a loss_fn that the memory stage did not run cannot clear it
    found = {f.rule: f for f in report_for(path, tmp_path, "summary").findings}
    assert found["probabilities-output"].evidence["loss_fn"].startswith("defined, not run")
    # log_softmax trained with nll_loss (the MNIST CNN) is right; logits are not flagged
    assert "probabilities-output" not in rule_ids(
        report_for(SAMPLES / "mnist_cnn.py", tmp_path, *STATIC)
    )
    logits = CLASSIFIER.replace("F.softmax(self.body(x), dim=1)", "self.body(x)")
    assert "probabilities-output" not in rule_ids(
        report_for(_model(tmp_path, logits), tmp_path, "summary")
    )


CONV_BN = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)  # conv2's output is also the residual: not foldable
        self.conv3 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.bn3 = nn.BatchNorm2d(16)  # after a pool, not after the conv
        self.conv4 = nn.Conv2d(16, 16, 1)
        self.bn4 = nn.BatchNorm2d(16)
        self.head = nn.Linear(16, 10)
        for bn in (self.bn1, self.bn2, self.bn3, self.bn4):  # statistics as if trained
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            nn.init.uniform_(bn.weight, 0.5, 1.5)
            nn.init.uniform_(bn.bias, -0.5, 0.5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        y = self.conv2(x)
        x = torch.relu(self.bn2(y) + y)
        x = self.bn3(self.pool(self.conv3(x)))
        x = torch.relu(self.bn4(self.conv4(x)))
        return self.head(x.mean((2, 3)))

def build_model():
    return Net().eval()
"""


def test_conv_bn_pairs_follow_the_data(tmp_path: Path) -> None:
    path = _model(tmp_path, CONV_BN, "torch.randn(2, 3, 16, 16)")
    report = report_for(path, tmp_path, "summary")
    assert report.summary.conv_bn_pairs == [["conv1", "bn1"], ["conv4", "bn4"]]
    finding = next(f for f in report.findings if f.rule == "conv-bn-fold")
    assert finding.severity == "info" and finding.evidence["foldable_pairs"] == 2
    assert "fuse_conv_bn_eval(model.conv1, model.bn1)" in finding.snippet
    # ResNet-18: every one of its 20 convolutions feeds a batch norm alone
    report = report_for(SAMPLES / "resnet18.py", tmp_path, "summary")
    assert len(report.summary.conv_bn_pairs) == 20
    # no batch norm: nothing to say
    assert report_for(SAMPLES / "mnist_cnn.py", tmp_path, "summary").summary.conv_bn_pairs == []


def test_fold_gives_the_same_outputs(tmp_path: Path) -> None:
    """Folded by reporter.conv_bn against the unfolded model, on a copy."""
    import copy

    import torch
    from helpers import subject_for
    from torch import nn

    from reporter import conv_bn
    from reporter.graph.record import record

    subject = subject_for(_model(tmp_path, CONV_BN, "torch.randn(2, 3, 16, 16)"), tmp_path)
    model = subject.model
    folded = conv_bn.fold(copy.deepcopy(model), [("conv1", "bn1"), ("conv4", "bn4")])
    assert isinstance(folded.bn1, nn.Identity) and isinstance(folded.bn4, nn.Identity)
    assert isinstance(folded.bn2, nn.BatchNorm2d) and folded.conv1.bias is not None
    with torch.no_grad():
        assert torch.allclose(folded(*subject.args), model(*subject.args), atol=1e-5)
    assert conv_bn.foldable_pairs(record(folded, subject.args, {}), folded) == []


def test_train_mode_at_build(tmp_path: Path) -> None:
    report = report_for(SAMPLES / "mnist_cnn.py", tmp_path, "summary")
    finding = next(f for f in report.findings if f.rule == "train-mode-at-build")
    assert report.summary.train_mode_modules == ["dropout1", "dropout2"]  # p=0.25, p=0.5
    assert finding.evidence["kinds"] == "2 Dropout"
    body = "def build_model():\n    return nn.Sequential(nn.Linear(16, 4), nn.Dropout()).eval()"
    assert "train-mode-at-build" not in rule_ids(
        report_for(_model(tmp_path, body), tmp_path, "summary")
    )


VIT = """
class DropPath(nn.Module):
    \"\"\"Stochastic depth as timm writes it; no torch class, so found by its code.\"\"\"
    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

class Block(nn.Module):
    def __init__(self, dim, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 4, dropout=0.0, batch_first=True)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim),
            nn.Dropout(0.0),
        )

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.drop_path(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop_path(self.mlp(self.norm2(x)))

class ViT(nn.Module):
    def __init__(self, depth=4, dim=32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, 8)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_drop = nn.Dropout(0.0)
        rates = [0.1 * i / (depth - 1) for i in range(depth)]  # the first block: 0.0
        self.blocks = nn.Sequential(*[Block(dim, r) for r in rates])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        x = self.blocks(self.pos_drop(x))
        return self.head(self.norm(x)[:, 0])

def build_model():
    return ViT()
"""


def test_train_mode_counts_what_behaves_differently(tmp_path: Path) -> None:
    """ViT-style: Dropout(p=0) everywhere and attention without dropout compute the same
    in both modes; the DropPath modules with a rate above 0 do not."""
    path = _model(tmp_path, VIT, "torch.randn(2, 3, 32, 32)")
    report = report_for(path, tmp_path, "summary")
    summary = report.summary
    assert summary.train_mode_modules == [f"blocks.{i}.drop_path" for i in (1, 2, 3)]
    assert summary.train_mode_types == {"DropPath": 3}
    # same in both modes: pos_drop + 2 Dropout(0) per block, 4 attentions, DropPath(0.0)
    assert summary.train_mode_same == 1 + 2 * 4 + 4 + 1
    finding = next(f for f in report.findings if f.rule == "train-mode-at-build")
    assert finding.title.startswith("3 module(s)")
    assert finding.evidence["ignored"].startswith("14 module(s)")
    # with every rate at 0 nothing behaves differently: no finding
    still = VIT.replace("rates = [0.1 * i", "rates = [0.0 * i")
    report = report_for(_model(tmp_path, still, "torch.randn(2, 3, 32, 32)"), tmp_path, "summary")
    assert "train-mode-at-build" not in rule_ids(report)
    assert report.summary.train_mode_same == 14 + 3  # the three DropPaths join the same


def test_mode_dependence_restores_the_model() -> None:
    """The comparison runs the model: its modes, buffers and RNG stream stay as they were."""
    import torch
    from torch import nn

    from reporter.mode_dependence import mode_dependence, reads_training

    class Noisy(nn.Module):
        def forward(self, x):
            return x + torch.randn_like(x) if self.training else x

    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), Noisy(), nn.Dropout(0.0)).train()
    stats = model[1].running_mean.clone()
    assert [reads_training(m) for m in model] == [False, True, True, True]
    x = torch.randn(8, 4)
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    found = mode_dependence(model, (x,), {})
    assert torch.rand(1).item() == expected.item()  # Noisy's draw in train mode was undone
    assert found.differs == ["1", "2"] and found.same == ["3"] and found.compared == 1
    assert all(m.training for m in model.modules())
    assert torch.equal(model[1].running_mean, stats)


def test_mode_dependence_runs_on_the_arguments_as_they_were() -> None:
    """A module that appends to a cache it is given (as attention layers do with a KV
    cache) is compared on the cache as it was before the eval call."""
    import torch
    from torch import nn

    from reporter.mode_dependence import mode_dependence

    class Cached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = 0.0

        def forward(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
            cache.append(x)
            return torch.stack(cache).sum(0) * (1.0 - (self.p if self.training else 0.0))

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Cached()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x, cache=[])

    model = Wrap().train()
    assert mode_dependence(model, (torch.randn(2, 3),), {}).same == ["inner"]
    model.inner.p = 0.5
    assert mode_dependence(model, (torch.randn(2, 3),), {}).differs == ["inner"]


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


DETECTOR = """
class Detector(nn.Module):
    \"\"\"Detection-style: raises without targets in train mode; in eval the proposals are
    a detached mask (x[mask] runs nonzero), labels an argmax, and one head is train-only.\"\"\"
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.rpn = nn.Conv2d(8, 1, 1)
        self.box_head = nn.Linear(8, 4)
        self.cls_head = nn.Linear(8, 3)
        self.loss_head = nn.Linear(8, 1)

    def forward(self, x, targets=None):
        if self.training and targets is None:
            raise ValueError("targets should be passed in training mode")
        f = self.backbone(x)
        keep = (self.rpn(f).sigmoid().flatten(1) > 0.5).detach()
        picked = f.flatten(2).transpose(1, 2)[keep]
        if self.training:
            return {"loss": self.loss_head(picked).mean()}
        return {"boxes": self.box_head(picked), "labels": self.cls_head(picked).argmax(-1)}

def build_model():
    return Detector()
"""


def test_unused_parameters_when_training_ran_in_eval_mode(tmp_path: Path) -> None:
    path = _model(tmp_path, DETECTOR, "torch.randn(2, 3, 8, 8)")
    report = report_for(path, tmp_path, *STATIC)
    training = report.memory.training
    assert training.mode == "eval" and "targets should be passed" in training.mode_note
    # rpn (behind a detached mask) and cls_head (argmax) were read: cut off by design
    assert set(training.params_without_grad) == {
        "rpn.weight",
        "rpn.bias",
        "cls_head.weight",
        "cls_head.bias",
        "loss_head.weight",
        "loss_head.bias",
    }
    assert training.params_not_read == ["loss_head.weight", "loss_head.bias"]
    finding = next(f for f in report.findings if f.rule == "unused-parameters")
    assert finding.severity == "info"
    assert finding.evidence["parameters"] == "loss_head.weight, loss_head.bias"
    assert finding.evidence["training_mode"].startswith("eval: the training figures come")
    assert "targets should be passed" in finding.evidence["training_mode"]
    # the memory and FLOPs sections say it where the figures are shown
    assert "eval-mode pass" in report.flops.backward_note
    from reporter.render.markdown import render_markdown

    text = render_markdown(report)
    assert "Training figures from an eval-mode pass" in text
    assert "Backward FLOPs come from an eval-mode pass" in text


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


def test_uncounted_op_flagged_by_its_time_share(tmp_path: Path) -> None:
    """torch.cdist runs as aten._euclidean_dist, which has no formula and no telling name:
    a profile (built here: measured shares depend on the machine's load) shows whether it
    takes a real share of the op time."""
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
    path = _model(tmp_path, body, "torch.randn(300, 64)")
    report = report_for(path, tmp_path, "flops")
    op = "aten._euclidean_dist"
    assert op in {o.op for o in report.flops.uncounted_ops}
    assert "flops-not-counted" not in rule_ids(report)  # without a profile no name hints
    # its total (900 µs, with the products inside it) against 1,000 µs of op self time
    report.profile = ProfileSection(
        mode="inference",
        device="cpu",
        trace_files=[],
        step_us=[1000.0, 1000.0],
        ops_by_name=[
            OpTime("aten::_euclidean_dist", 1, 100.0, 900.0),
            OpTime("aten::mm", 1, 800.0, 800.0),
            OpTime("aten::addmm", 1, 100.0, 100.0),
        ],
    )
    finding = next(f for f in run_rules(report) if f.rule == "flops-not-counted")
    assert finding.evidence["op 1"] == f"{op}, 1 call(s), {percent(0.9)} of op time"
    # 5.2% against the 5% threshold: inside the 5% margin, not said
    report.profile.ops_by_name[0] = OpTime("aten::_euclidean_dist", 1, 10.0, 52.0)
    report.profile.ops_by_name[1] = OpTime("aten::mm", 1, 890.0, 890.0)
    assert "flops-not-counted" not in {f.rule for f in run_rules(report)}
    # 9% with steps 10% apart: 50 µs of noise may sit inside the op: 4.2% without it
    report.profile.ops_by_name[0] = OpTime("aten::_euclidean_dist", 1, 10.0, 90.0)
    report.profile.step_us = [950.0, 1050.0]
    assert "flops-not-counted" not in {f.rule for f in run_rules(report)}


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
