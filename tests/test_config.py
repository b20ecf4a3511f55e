"""Threshold overrides from pyproject.toml or --config reach the rules."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES


def _dominant(out: Path) -> bool:
    return any(
        f["rule"] == "dominant-layer"
        for f in json.loads((out / "report.json").read_text())["findings"]
    )


def test_pyproject_threshold_silences_a_rule(cli, tmp_path: Path) -> None:
    model = tmp_path / "proj" / "mnist.py"
    model.parent.mkdir()
    model.write_text((SAMPLES / "mnist_cnn.py").read_text())
    assert cli(model, "-o", tmp_path / "a", "--only", "summary").code == 0
    assert _dominant(tmp_path / "a")  # fc1 holds 98.3% > 50%
    (tmp_path / "proj" / "pyproject.toml").write_text(
        '[tool.perfreport.thresholds]\n"structure.dominant_layer_share" = 0.99\n'
    )
    assert cli(model, "-o", tmp_path / "b", "--only", "summary").code == 0
    assert not _dominant(tmp_path / "b")


def test_config_file_and_bad_threshold(cli, tmp_path: Path) -> None:
    config = tmp_path / "perf.toml"
    config.write_text('[thresholds]\n"structure.dominant_layer_share" = 0.99\n')
    out = tmp_path / "c"
    assert (
        cli(SAMPLES / "mnist_cnn.py", "-o", out, "--only", "summary", "--config", config).code == 0
    )
    assert not _dominant(out)
    config.write_text('[thresholds]\n"no.such" = 1\n')
    result = cli(SAMPLES / "mnist_cnn.py", "-o", out, "--only", "summary", "--config", config)
    assert result.code == 2 and "unknown threshold 'no.such'" in result.err
    config.write_text('[thresholds]\n"structure.dominant_layer_share" = "high"\n')
    result = cli(SAMPLES / "mnist_cnn.py", "-o", out, "--only", "summary", "--config", config)
    assert result.code == 2 and "is not a number" in result.err
