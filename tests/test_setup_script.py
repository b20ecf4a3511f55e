"""scripts/setup.sh: what it says it installs; Chromium only for the tests; no root route."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from conftest import REPO

SETUP = REPO / "scripts" / "setup.sh"


def dry_run(*flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SETUP), "--dry-run", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_plain_set_up_names_what_it_installs_and_how_long_without_chromium() -> None:
    run = dry_run()
    assert run.returncode == 0, run.stderr
    assert "graphviz" in run.stdout and "libpango-1.0-0" in run.stdout
    assert "chromium" not in run.stdout and "[tensorboard,deploy]" in run.stdout
    assert re.search(r"roughly \d+-\d+ minutes", run.stdout)
    assert "would run: .venv/bin/python -m pip install -q -e .[tensorboard,deploy]" in run.stdout


def test_tests_set_up_adds_chromium_and_the_test_packages() -> None:
    run = dry_run("--tests")
    assert run.returncode == 0, run.stderr
    assert "chromium" in run.stdout and "poppler-utils" in run.stdout
    assert "-e .[tensorboard,deploy,test,dev]" in run.stdout


def test_no_system_never_calls_apt(tmp_path: Path) -> None:
    """With every package missing (a dpkg-query that finds nothing), the plain set-up
    installs them with apt-get and --no-system only names them."""
    (tmp_path / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "dpkg-query").chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    plain = dry_run("--tests", env=env)
    assert plain.returncode == 0, plain.stderr
    if os.geteuid() == 0 or shutil.which("sudo"):
        assert "apt-get install" in plain.stdout and "chromium" in plain.stdout
    quiet = dry_run("--tests", "--no-system", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "apt-get" not in quiet.stdout
    assert "--no-system: not installing graphviz" in quiet.stdout


def test_unknown_option_is_refused() -> None:
    run = subprocess.run(["bash", str(SETUP), "--bogus"], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown option --bogus" in run.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    command = "bash scripts/setup.sh --tests && .venv/bin/python -m pytest"
    assert f"\n{command}\n" in readme
    assert command in (REPO / ".ci" / "run").read_text()
    assert "\nbash scripts/setup.sh && .venv/bin/perfreport sample_models/mnist_cnn.py\n" in readme
