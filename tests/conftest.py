"""Fixtures: run the CLI for real, build subjects in-process, find the test data."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reporter.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
# Real Kineto traces (HTA test data, MIT; see LICENSE-HTA-traces there), in the repository.
TRACE_DATA = REPO / "tests" / "data" / "traces"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `perfreport ARGS` in this process (the model still runs in a child process)."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def model_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a model file from (dedented) source and return its path."""

    def write(source: str, name: str = "model.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/ from the current renderers (or PERFREPORT_UPDATE_GOLDEN=1)",
    )
