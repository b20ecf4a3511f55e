"""The Python API: reporter.analyze on a live module and on a file, Report.save, and the
report shown inline by a real Jupyter kernel (a notebook executed with nbconvert)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, SAMPLES
from torch import nn

import reporter
from reporter.api import options_to_argv
from reporter.errors import UsageError

NOTEBOOK = REPO / "tests" / "data" / "analyze.ipynb"


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)
    )


def conv_net_flops(batch: int) -> int:
    """By hand: 2 FLOPs per multiply-add of the convolution and the linear layer."""
    conv = batch * 8 * 6 * 6 * (3 * 3 * 3)
    linear = batch * (8 * 6 * 6) * 10
    return 2 * (conv + linear)


def test_options_are_the_cli_long_flags() -> None:
    argv = options_to_argv(
        {"skip": ["profile", "timing"], "train": True, "timeout": 60, "device": "cpu",
         "input_shape": [[2, 3], [4]], "budget": "params=10M", "deploy": False}
    )  # fmt: skip
    assert argv == [
        "--skip", "profile,timing", "--train", "--timeout", "60", "--device", "cpu",
        "--input-shape", "2,3", "--input-shape", "4", "--budget", "params=10M",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="unknown option frobnicate="):
        options_to_argv({"frobnicate": 1})
    with pytest.raises(UsageError, match="finite number above 0"):
        reporter.analyze(nn.Linear(2, 2), torch.randn(1, 2), timeout=float("nan"))


def test_live_module_in_process_keeps_its_state(tmp_path: Path) -> None:
    model = conv_net().train()
    x = torch.randn(4, 3, 8, 8)
    model(x).sum().backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    running = model[1].running_mean.clone()
    tracked = int(model[1].num_batches_tracked)
    report = reporter.analyze(model, x, only=["summary", "flops", "memory"])
    assert report.flops.forward_total == conv_net_flops(4)
    assert report.model.parameters.total == sum(p.numel() for p in model.parameters())
    assert report.stages["memory"].status == "ok"
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(p.grad, grads[k]) for k, p in model.named_parameters())
    assert torch.equal(model[1].running_mean, running)
    assert int(model[1].num_batches_tracked) == tracked
    written = report.save(tmp_path / "out", formats=["json", "md"])
    assert sorted(p.name for p in written) == ["report.json", "report.md"]
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["flops"]["forward_total"] == conv_net_flops(4)


def test_a_failing_stage_is_guarded_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFREPORT_FAULT", "stage.flops")
    report = reporter.analyze(nn.Linear(3, 2), torch.randn(2, 3), only=["summary", "flops"])
    assert report.stages["flops"].status == "failed"
    assert "fault injected" in report.stages["flops"].error
    assert report.stages["summary"].status == "ok"


def test_timeout_ends_an_in_process_run(model_file) -> None:
    class Slow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            import time

            time.sleep(5)
            return x

    report = reporter.analyze(Slow(), torch.randn(2), only=["summary", "timing"], timeout=1)
    failed = [n for n, s in report.stages.items() if s.status == "failed"]
    # The timing stage runs first (a fresh heap, as a user's own benchmark has).
    assert failed == ["timing"]
    assert "timed out after 1 s" in report.stages["timing"].error
    assert report.stages["summary"].status == "skipped"


def test_model_file_runs_in_a_child_process() -> None:
    report = reporter.analyze(SAMPLES / "mlp.py", only=["summary"])
    assert report.stages["summary"].status == "ok"
    assert report.model.source == str(SAMPLES / "mlp.py")
    with pytest.raises(UsageError, match="brings its own inputs"):
        reporter.analyze(SAMPLES / "mlp.py", torch.randn(1))


def test_notebook_shows_the_report_inline(tmp_path: Path) -> None:
    """Executes tests/data/analyze.ipynb in a real kernel (jupyter nbconvert --execute)."""
    out = tmp_path / "saved"
    env = dict(os.environ, PERFREPORT_NOTEBOOK_OUT=str(out))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    run = subprocess.run(
        [
            sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
            "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path), str(NOTEBOOK),
        ],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    cells = json.loads((tmp_path / NOTEBOOK.name).read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "state unchanged" in text
    html = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) == 1 and html[0].startswith("<iframe srcdoc=")
    assert "&lt;style" in html[0] and "<style" not in html[0]  # the CSS stays in the iframe
    saved = json.loads((out / "report.json").read_text())
    assert saved["flops"]["forward_total"] == conv_net_flops(4)
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
