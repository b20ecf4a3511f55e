"""Odd but possible inputs: each is handled in one line or works."""

from __future__ import annotations

import json
import os

import pytest
from conftest import SAMPLES

NO_PARAMETERS = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.ReLU(), nn.Flatten())

def example_inputs():
    return torch.randn(2, 4, 4)
"""


def test_a_model_without_parameters_gets_its_graph(cli, tmp_path, model_file) -> None:
    out = tmp_path / "out"
    result = cli(model_file(NO_PARAMETERS), "-o", out, "--only", "summary,graph")
    assert result.code == 0, result.err
    data = json.loads((out / "report.json").read_text())
    assert data["stages"]["graph"]["status"] == "ok", data["stages"]["graph"]
    assert (out / "graph.svg").read_text().lstrip().startswith("<?xml")


def test_unsafe_pickle_is_refused_in_perfreports_words(cli, tmp_path) -> None:
    import torch

    class Reduce:
        def __reduce__(self):
            return (os.getcwd, ())

    evil = tmp_path / "evil.pt"
    torch.save(Reduce(), evil)
    result = cli(SAMPLES / "mlp.py", "--input", evil, "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 2
    assert "needs unsafe unpickling, which perfreport refuses" in result.err
    assert "will likely succeed" not in result.err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    result = cli(
        SAMPLES / "mlp.py", "--input", garbage, "-o", tmp_path / "out", "--only", "summary"
    )
    assert result.code == 2 and "is not a file torch.save wrote" in result.err
    assert "weights_only" not in result.err.replace("weights_only=True", "")


def test_example_inputs_dict_with_non_name_keys_is_a_usage_error(cli, tmp_path, model_file):
    source = """
    import torch
    from torch import nn

    def build_model():
        return nn.Linear(4, 2)

    def example_inputs():
        return {1: torch.randn(2, 4)}
    """
    result = cli(model_file(source), "-o", tmp_path / "out", "--only", "summary,flops")
    assert result.code == 2
    assert "cannot be a parameter name" in result.err
    assert not (tmp_path / "out" / "report.json").exists()


SHADOW = "raise ImportError('the model folder shadowed an installed package')\n"


def test_a_neighbour_module_does_not_shadow_installed_packages(
    cli, tmp_path, model_file, monkeypatch
) -> None:
    (tmp_path / "torchinfo.py").write_text(SHADOW)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "torchinfo.py").write_text(SHADOW)
    monkeypatch.chdir(cwd)  # the working folder must not shadow it either
    path = model_file((SAMPLES / "mlp.py").read_text())
    out = tmp_path / "out"
    result = cli(path, "-o", out, "--only", "summary")
    assert result.code == 0, result.err
    data = json.loads((out / "report.json").read_text())
    assert data["stages"]["summary"]["status"] == "ok", data["stages"]["summary"]


@pytest.mark.parametrize(
    "toml",
    ['[tool]\nperfreport = "oops"\n', "[tool]\nperfreport = [1, 2]\n"],
)
def test_perfreport_settings_that_are_not_a_table(cli, tmp_path, toml) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    model = tmp_path / "mlp.py"
    model.write_text((SAMPLES / "mlp.py").read_text())
    result = cli(model, "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 2
    assert "tool.perfreport must be a table" in result.err
    assert "Traceback" not in result.err


def test_someone_elses_tool_key_is_left_alone(cli, tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text('tool = "not a table"\n')
    model = tmp_path / "mlp.py"
    model.write_text((SAMPLES / "mlp.py").read_text())
    assert cli(model, "-o", tmp_path / "out", "--only", "summary").code == 0
