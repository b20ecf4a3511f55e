"""The reusable GitHub Action (action.yml): its steps' scripts run here, in bash, against
the real CLI (a `perfreport` on PATH that runs this checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SAMPLES

ACTION = REPO / "action.yml"


def action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


def step(name_start: str) -> dict[str, Any]:
    return next(s for s in action()["runs"]["steps"] if s.get("name", "").startswith(name_start))


@pytest.fixture
def shell(tmp_path: Path):  # noqa: ANN201
    """Run one step's script as GitHub would (bash -e -o pipefail), with its env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "perfreport"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m reporter "$@"\n')
    shim.chmod(0o755)
    output = tmp_path / "github_output"

    def run(name: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        output.write_text("")
        full = dict(os.environ, GITHUB_OUTPUT=str(output), OUT=str(tmp_path / "perfreport"))
        full["PATH"] = f"{bin_dir}{os.pathsep}{full['PATH']}"
        full["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full.get("PYTHONPATH")) if p)
        full.update(env)
        script = step(name)["run"]
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            env=full, cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        pairs = [line.split("=", 1) for line in output.read_text().splitlines() if "=" in line]
        return done, dict(pairs)

    return run


def test_action_inputs_and_install() -> None:
    data = action()
    assert data["runs"]["using"] == "composite"
    assert data["inputs"]["model"]["required"] is True
    for name in ("options", "budgets", "compare-base", "comment", "fail-on-incomplete"):
        assert "description" in data["inputs"][name] and "default" in data["inputs"][name]
    install = step("Install")["run"]
    assert "graphviz" in install and "libpango-1.0-0" in install
    assert '"$ACTION_PATH"' in install  # perfreport from the action's own repository
    assert step("Install")["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert 'pip install ".' not in ACTION.read_text()  # not the repository under test
    for s in data["runs"]["steps"]:
        if "run" in s:  # inputs reach scripts through env only, never pasted into the code
            assert "${{" not in s["run"], s["name"]


def test_head_step_records_a_crossed_budget_and_the_report(shell, tmp_path: Path) -> None:
    done, outputs = shell(
        "Report on the head commit",
        MODEL=str(SAMPLES / "mlp.py"),
        OPTIONS="--only summary,flops",
        BUDGETS="params=1k\nflops=1G",
        BASELINE="",
    )
    assert done.returncode == 0, done.stderr
    assert outputs["exit_code"] == "1"  # mlp.py has far more than 1k parameters
    head = Path(outputs["report_dir"])
    assert (head / "report.md").is_file() and (head / "report.pdf").is_file()
    assert "crosses budget params=1k" in " ".join(done.stderr.split())
    assert "flops=1G" in (head / "report.md").read_text()

    done, _ = shell("Write the comment", BASELINE=str(head / "report.json"))
    assert done.returncode == 0, done.stderr
    comment = (tmp_path / "perfreport" / "comment.md").read_text()
    assert comment.startswith((tmp_path / "perfreport" / "diff" / "diff.md").read_text())
    assert "Full report on the head commit" in comment

    failed, _ = shell("Fail on", CODE="1", FAIL_ON_INCOMPLETE="false")
    assert failed.returncode == 1 and "::error::" in failed.stdout


def test_bad_usage_fails_the_head_step(shell) -> None:
    done, outputs = shell(
        "Report on the head commit",
        MODEL=str(SAMPLES / "mlp.py"), OPTIONS="--timeout nan", BUDGETS="", BASELINE="",
    )  # fmt: skip
    assert done.returncode == 2 and outputs["exit_code"] == "2"
    assert "--timeout nan" in done.stderr


@pytest.mark.parametrize(
    ("code", "strict", "expected"), [("0", "false", 0), ("3", "false", 0), ("3", "true", 3)]
)
def test_incomplete_report_warns_or_fails(shell, code: str, strict: str, expected: int) -> None:
    done, _ = shell("Fail on", CODE=code, FAIL_ON_INCOMPLETE=strict)
    assert done.returncode == expected
    assert ("::warning::" in done.stdout) == (code == "3")
