"""A non-editable install (a real wheel) carries its templates and writes reports."""

from __future__ import annotations

import email.message
import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp), str(REPO)],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed: {build.stderr[-2000:]}")
    wheel = next(tmp.glob("perfreport_torch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = _metadata(wheel)
    assert metadata["Name"] == "perfreport-torch"
    assert metadata["Requires-Python"] == ">=3.11"
    requires = metadata.get_all("Requires-Dist") or []
    base = [r for r in requires if "extra ==" not in r]
    for name in ("torch", "weasyprint", "markupsafe", "jinja2", "torchinfo"):
        assert any(r.lower().startswith(name) for r in base), (name, base)
    # ruff is a development tool, not something the tests need
    assert not any(r.startswith("ruff") and "extra == 'test'" in r for r in requires)
    assert any(r.startswith("ruff") and "extra == 'dev'" in r for r in requires)
    assert any(
        c.startswith("Programming Language :: Python :: 3.11")
        for c in metadata.get_all("Classifier") or []
    )
    assert "reporter/templates/report.html.j2" in names
    assert "reporter/templates/report.css" in names
    assert any(n.startswith("reporter/templates/sections/") for n in names)
    site = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return site


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode())


def test_license_file_is_in_the_repository() -> None:
    assert "MIT License" in (REPO / "LICENSE").read_text()


def test_wheel_install_writes_a_report(installed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(installed))
    code = (
        "import reporter, sys; from reporter.cli import main; "
        "print(reporter.__file__, file=sys.stderr); "
        f"sys.exit(main([{str(SAMPLES / 'mlp.py')!r}, '-o', {str(out)!r}, '--only', 'summary']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert str(installed) in run.stderr  # the installed copy ran, not the checkout
    html = (out / "report.html").read_text()
    assert "<style>" in html and "Sequential" in html
    # and `render` re-renders from the JSON alone
    again = tmp_path / "again"
    code = f"import sys; from reporter.cli import main; sys.exit(main(['render', {str(out / 'report.json')!r}, '-o', {str(again)!r}]))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert (again / "report.html").read_text().count("Sequential") == html.count("Sequential")


def test_console_script_and_module_entry_points() -> None:
    script = Path(sys.executable).parent / "perfreport"
    if not script.exists():
        pytest.skip("perfreport is not installed in this environment (pip install -e .)")
    from reporter import __version__

    for cmd in ([str(script), "--version"], [sys.executable, "-m", "reporter", "--version"]):
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert f"perfreport {__version__}" in run.stdout + run.stderr
