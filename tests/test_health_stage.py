"""The health stage end to end: options, the untouched model, the comparison, the outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SAMPLES
from helpers import run_stages, subject_for
from torch.utils.tensorboard import SummaryWriter

from reporter.report import load_report
from reporter.stages import SkipStage

MODEL = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.add_module("<b>head</b>", nn.Linear(16, 5))

    def forward(self, x):
        return getattr(self, "<b>head</b>")(self.body(x))

def example_inputs():
    return torch.randn(12, 8)

def eval_batches():
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        yield torch.randn(10, 8, generator=g), torch.randint(0, 5, (10,), generator=g)
"""


def test_full_run_writes_every_part_and_escapes_names(cli, model_file, tmp_path: Path) -> None:
    path = model_file(MODEL)
    logdir = tmp_path / "runs"
    writer = SummaryWriter(str(logdir / "train"))
    for step in range(12):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()
    out = tmp_path / "out"
    result = cli(
        path, "-o", out, "--only", "health", "--train-steps", "4", "--compare-optimizers",
        "--logdir", logdir, "--format", "html,json,md",
    )  # fmt: skip
    assert result.code == 0, result.err
    report = load_report(out / "report.json")
    assert report.stages["health"].status == "ok"
    h = report.health
    assert h.probe.steps_run == 4 and h.probe.optimizer == "adam" and h.probe.lr == 1e-3
    assert [x.name for x in h.probe.layers] == ["body.0", "<b>head</b>"]
    # Same initial weights and targets: every optimizer starts from the probe's first loss.
    assert [r.name for r in h.comparison.runs] == ["sgd", "sgd_momentum", "adam", "adamw"]
    for r in h.comparison.runs:
        assert len(r.losses) == 4 and abs(r.losses[0] - h.probe.losses[0]) < 1e-5
    best = max(h.comparison.runs, key=lambda r: r.drop)
    assert h.comparison.fastest == best.name and "short probe" in h.comparison.statement
    assert [c.tag for c in h.logs.curves] == ["loss"] and h.logs.curves[0].points == 12
    assert h.accuracy.samples == 20 and h.accuracy.num_classes == 5
    html = (out / "report.html").read_text()
    section = html[html.index('<section id="health">') :]
    assert section.count("<svg") >= 4  # gradient norms, losses, histograms, logged loss
    assert "<b>head</b>" not in html and "&lt;b&gt;head&lt;/b&gt;" in html
    md = (out / "report.md").read_text()
    assert "### Training health" in md and "Accuracy on `eval_batches()`" in md


def test_the_analysed_model_is_left_untouched(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "mnist_cnn.py", tmp_path)
    before = {k: v.clone() for k, v in subject.model.state_dict().items()}
    mode = subject.model.training
    section = run_stages(subject, tmp_path, "health", stage_options={"health": {"train_steps": 3}})[
        "health"
    ]
    assert section.probe.steps_run == 3
    assert section.probe.losses[-1] < section.probe.losses[0]
    after = subject.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert subject.model.training == mode
    assert all(p.grad is None for p in subject.model.parameters())


def test_probe_off_and_nothing_else_skips_with_a_reason(model_file, tmp_path: Path) -> None:
    path = model_file(
        "import torch\nmodel = torch.nn.Linear(3, 2)\nexample_inputs = torch.randn(2, 3)\n"
    )
    subject = subject_for(path, tmp_path)
    with pytest.raises(SkipStage, match="--train-steps"):
        run_stages(subject, tmp_path, "health", stage_options={"health": {"train_steps": 0}})


LINEAR = "import torch\nmodel = torch.nn.Linear(3, 2)\nexample_inputs = torch.randn(2, 3)\n"


def test_probe_is_opt_in(model_file, tmp_path: Path) -> None:
    subject = subject_for(model_file(LINEAR), tmp_path)
    with pytest.raises(SkipStage, match="opt-in .pass --train or --train-steps N"):
        run_stages(subject, tmp_path, "health")
    # --train turns it on with the default budget; so does --compare-optimizers
    probe = run_stages(subject, tmp_path, "health", train=True)["health"].probe
    assert probe is not None and probe.steps_run >= 1


def test_probe_that_would_not_fit_in_memory_is_skipped_with_the_figures(
    model_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reporter.stages.health as health

    subject = subject_for(model_file(LINEAR), tmp_path)
    weights = sum(p.numel() * 4 for p in subject.model.parameters())  # 8 floats: 32 bytes
    need = weights + weights * (1 + 2)  # copy + gradients + Adam's two moments
    monkeypatch.setattr(health, "available_memory", lambda device: int(need / 0.8) - 1)
    with pytest.raises(SkipStage, match="gradients and optimizer state needs 0.0 GiB"):
        run_stages(subject, tmp_path, "health", stage_options={"health": {"train_steps": 1}})
    monkeypatch.setattr(health, "available_memory", lambda device: int(need / 0.8) + 1)
    run_stages(subject, tmp_path, "health", stage_options={"health": {"train_steps": 1}})


def test_bad_flags_are_usage_errors(cli, model_file, tmp_path: Path) -> None:
    path = model_file(
        "import torch\nmodel = torch.nn.Linear(3, 2)\nexample_inputs = torch.randn(2, 3)\n"
    )
    bad = cli(path, "--train-steps", "-2")
    assert bad.code == 2 and "--train-steps -2" in bad.err
    missing = cli(path, "--logdir", tmp_path / "nope")
    assert missing.code == 2 and "--logdir" in missing.err and "no such folder" in missing.err
    assert cli(path, "--optimizer", "rmsprop").code == 2
