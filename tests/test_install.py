"""What differs on a newcomer's machine: folders that shadow packages, the declared floors."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

from conftest import REPO

SHADOW = "raise ImportError('the user folder was imported instead of the real package')\n"


def test_a_reporter_folder_in_the_working_directory_is_not_imported(
    cli, model_file, tmp_path: Path, monkeypatch
) -> None:
    """The model process starts with -P: the current directory is not on its sys.path."""
    work = tmp_path / "work"
    (work / "reporter").mkdir(parents=True)
    (work / "reporter" / "__init__.py").write_text(SHADOW)
    (work / "reporter" / "worker.py").write_text(SHADOW)
    (work / "torch").mkdir()
    (work / "torch" / "__init__.py").write_text(SHADOW)
    monkeypatch.chdir(work)
    path = model_file(
        """
        import torch
        model = torch.nn.Linear(4, 3)
        example_inputs = torch.randn(2, 4)
        """
    )
    result = cli(path, "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["model"]["parameters"]["total"] == 4 * 3 + 3


def test_the_model_folder_comes_after_site_packages(cli, model_file, tmp_path: Path) -> None:
    """A torchinfo.py beside the model does not replace torchinfo, yet the model's own
    neighbour modules still import."""
    (tmp_path / "torchinfo.py").write_text(SHADOW)
    (tmp_path / "my_layers.py").write_text(
        "import torch\n\ndef block():\n    return torch.nn.Linear(5, 7)\n"
    )
    path = model_file(
        """
        import torch
        from my_layers import block
        model = block()
        example_inputs = torch.randn(2, 5)
        """
    )
    result = cli(path, "-o", tmp_path / "out", "--only", "summary")
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["model"]["parameters"]["total"] == 5 * 7 + 7
    assert data["stages"]["summary"]["status"] == "ok"


def test_declared_python_floor_is_the_one_tested() -> None:
    """requires-python names 3.11 (tomllib); the tests run on 3.11 or later."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)
    assert any(d.replace(" ", "").startswith("torch>=2.13") for d in project["dependencies"])
