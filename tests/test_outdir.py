"""The output folder changes as a whole or not at all; runs never read each other's files."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES

from reporter.errors import UsageError
from reporter.outdir import STAGING_TAG, Staging, remove_dead_stagings, staged

OLD = {
    "report.json": '{"previous": true}',
    "report.html": "<p>previous</p>",
    "graph.svg": "<svg>previous</svg>",
    "graph.dot": "digraph previous {}",
    "trace/perfreport.1.pt.trace.json": '{"traceEvents": []}',
}


def _old_report(out: Path) -> None:
    for name, text in OLD.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)


def _assert_old_report(out: Path) -> None:
    for name, text in OLD.items():
        assert (out / name).read_text() == text, name


def _stagings(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}{STAGING_TAG}*"))


def test_commit_replaces_every_owned_name_and_keeps_others(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _old_report(out)
    (out / "notes.txt").write_text("mine")  # not perfreport's: never touched
    with staged(out) as staging:
        (staging.path / "report.json").write_text("{}")
        (staging.path / "trace").mkdir()
        (staging.path / "trace" / "new.pt.trace.json").write_text("[]")
        assert (out / "graph.svg").exists()  # nothing in -o changes before the commit
        written = staging.commit([staging.path / "report.json"])
    assert written == [out / "report.json"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.json", "trace"]
    assert [p.name for p in (out / "trace").iterdir()] == ["new.pt.trace.json"]
    assert not _stagings(out)


def test_a_disk_error_is_one_line_and_leaves_the_old_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _old_report(out)
    with pytest.raises(UsageError, match="nothing in .* was changed"), staged(out) as staging:
        (staging.path / "report.json").write_text("{}")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    _assert_old_report(out)
    assert not _stagings(out)


def test_two_runs_into_one_folder_never_mix(tmp_path: Path) -> None:
    """Each run stages its own trace; the later commit wins whole."""
    out = tmp_path / "out"
    out.mkdir()
    first, second = Staging(out), Staging(out)
    for staging, name in ((first, "a"), (second, "b")):
        (staging.path / "trace").mkdir()
        (staging.path / "trace" / f"{name}.pt.trace.json").write_text("[]")
        (staging.path / "report.json").write_text(json.dumps({"run": name}))
    assert not list((second.path / "trace").glob("a.*"))
    first.commit()
    second.commit()
    assert [p.name for p in (out / "trace").iterdir()] == ["b.pt.trace.json"]
    assert json.loads((out / "report.json").read_text()) == {"run": "b"}
    first.close()
    second.close()


def test_a_trace_symlink_in_the_folder_is_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "perfreport.1.pt.trace.json").write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "trace").symlink_to(elsewhere)
    with staged(out) as staging:
        (staging.path / "trace").mkdir()
        staging.commit()
    assert (elsewhere / "perfreport.1.pt.trace.json").read_text() == "keep me"
    assert (out / "trace").is_dir() and not (out / "trace").is_symlink()


def test_staging_of_a_dead_run_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead = tmp_path / f".out{STAGING_TAG}dead"
    dead.mkdir()
    (dead / "report.json").write_text("{}")
    live = Staging(out)
    remove_dead_stagings(out)
    assert not dead.exists()
    assert live.path.exists()  # its run still holds the lock
    live.close()


def test_run_with_fewer_stages_leaves_nothing_stale(cli, tmp_path: Path) -> None:
    """No graph, no trace this time: the old graph files and trace go with the old report."""
    out = tmp_path / "out"
    out.mkdir()
    _old_report(out)
    result = cli(SAMPLES / "mlp.py", "-o", out, "--only", "summary,trace")
    assert result.code == 0, result.err
    data = json.loads((out / "report.json").read_text())
    assert data["stages"]["trace"]["status"] == "skipped"
    assert data["options"]["out_dir"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert "out/report.md" in result.err and STAGING_TAG not in result.err
    assert not _stagings(out)


def test_disk_full_while_writing_reports(cli, tmp_path: Path, monkeypatch) -> None:
    """The third file fails with ENOSPC: exit 2, one line, the old report whole."""
    import reporter.render as render

    out = tmp_path / "out"
    out.mkdir()
    _old_report(out)
    real = render.write_atomic

    def full_disk(path: Path, data: str | bytes) -> None:
        if path.name == "report.md":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(render, "write_atomic", full_disk)
    result = cli(SAMPLES / "mlp.py", "-o", out, "--only", "summary,graph")
    assert result.code == 2
    assert "No space left on device" in result.err and "Traceback" not in result.err
    _assert_old_report(out)
    assert not _stagings(out)


def test_sigterm_mid_run_changes_nothing(tmp_path: Path) -> None:
    """The graph stage has written its files (in staging) when SIGTERM comes: -o is as before."""
    out = tmp_path / "out"
    out.mkdir()
    _old_report(out)
    env = dict(os.environ, PERFREPORT_FAULT="stage.profile:hang", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "reporter", str(SAMPLES / "mlp.py"), "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--only", "summary,graph,profile"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    staged_graph = None
    deadline = time.monotonic() + 120
    while staged_graph is None and time.monotonic() < deadline:
        staged_graph = next(iter(tmp_path.glob(f".out{STAGING_TAG}*/graph.svg")), None)
        time.sleep(0.2)
    assert staged_graph is not None, "the graph stage did not write its files"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    _assert_old_report(out)
    assert not _stagings(out)


def test_render_on_a_full_disk_leaves_the_folder_as_it_was(cli, tmp_path, monkeypatch) -> None:
    import reporter.render as render
    from reporter.report import ModelInfo, Report, report_to_json

    folder = tmp_path / "out"
    folder.mkdir()
    source = folder / "report.json"
    source.write_text(report_to_json(Report(model=ModelInfo(class_name="M", source="m.py"))))
    (folder / "report.html").write_text("<p>previous</p>")
    real = render.write_atomic

    def full_disk(path: Path, data: str | bytes) -> None:
        if path.name == "report.md":  # written after report.html
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(render, "write_atomic", full_disk)
    result = cli("render", source)
    assert result.code == 2 and "No space left on device" in result.err
    assert (folder / "report.html").read_text() == "<p>previous</p>"
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json"]
    monkeypatch.setattr(render, "write_atomic", real)
    assert cli("render", source).code == 0
    assert "previous" not in (folder / "report.html").read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json", "report.md"]


def test_two_concurrent_runs_into_one_folder(tmp_path: Path) -> None:
    """Both record a trace at once: the report that wins has one rank, its own trace."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "reporter", str(SAMPLES / "mlp.py"), "-o", str(out)]
    cmd += ["--only", "summary,profile,trace", "--profile-steps", "0,1,1"]
    runs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        for _ in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
    data = json.loads((out / "report.json").read_text())
    assert len(data["trace"]["ranks"]) == 1
    assert [p.name for p in (out / "trace").iterdir()] == [
        Path(data["profile"]["trace_files"][0]).name
    ]
    assert not _stagings(out)
