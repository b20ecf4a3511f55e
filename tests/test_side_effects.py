"""What a model or an input file can make perfreport do is bounded: the model's output, a
gzip bomb, a symlink in the output folder."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from pathlib import Path

import pytest
from conftest import SAMPLES

from reporter.errors import UsageError
from reporter.outdir import STAGING_TAG
from reporter.trace.gunzip import LIMIT_ENV, gunzip_bounded

MIB = 2**20


def _bomb(path: Path, expanded_mib: int) -> Path:
    """A gzip file that starts like a trace and expands to `expanded_mib` MiB of spaces,
    written in pieces so the test itself holds little memory."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with path.open("wb") as f:
        f.write(deflate.compress(b'{"traceEvents": ['))
        block = b" " * MIB
        for _ in range(expanded_mib):
            f.write(deflate.compress(block))
        f.write(deflate.flush())
    return path


def test_gunzip_stops_at_the_limit(tmp_path: Path) -> None:
    raw = _bomb(tmp_path / "bomb.json.gz", 200).read_bytes()
    assert len(raw) < MIB  # 200 MiB in well under 1 MiB of gzip
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match="expands past .* gzip bomb"):
            gunzip_bounded(raw, tmp_path / "bomb.json.gz", limit=16 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 16 * MIB < peak < 40 * MIB  # the limit's worth, never the 200 MiB


def test_gunzip_reads_every_member_and_refuses_damage(tmp_path: Path) -> None:
    text = b'{"traceEvents": []}'
    assert gunzip_bounded(gzip.compress(text), tmp_path) == text
    two = gzip.compress(text[:5]) + gzip.compress(text[5:])
    assert gunzip_bounded(two, tmp_path) == text
    assert gunzip_bounded(gzip.compress(text)[:-12], tmp_path) is None  # truncated
    assert gunzip_bounded(gzip.compress(text) + b"junk", tmp_path) is None
    with pytest.raises(UsageError):
        gunzip_bounded(two, tmp_path, limit=len(text) - 1)


def test_perfreport_trace_refuses_a_gzip_bomb(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(LIMIT_ENV, str(16 * MIB))
    bomb = _bomb(tmp_path / "bomb.pt.trace.json.gz", 64)
    result = cli("trace", bomb, "-o", tmp_path / "out")
    assert result.code == 2
    assert "gzip bomb" in result.err and "Traceback" not in result.err


PRINTING = """
import os, sys
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        with open({where!r}, "w") as f:
            f.write(os.readlink("/proc/self/fd/1"))
        line = "x" * 1023 + "\\n"
        for _ in range(100 * 1024):       # 100 MiB of prints
            sys.stdout.write(line)
        sys.stdout.write("LAST LINE\\n")
        sys.stdout.flush()
        os._exit(7)

def example_inputs():
    return torch.randn(2, 4)
"""


def test_the_models_output_costs_no_disk(cli, tmp_path, model_file) -> None:
    """The model's output goes through a pipe; only its tail is kept (for the report)."""
    where = tmp_path / "stdout-is"
    out = tmp_path / "out"
    result = cli(model_file(PRINTING.format(where=str(where))), "-o", out, "--only", "summary")
    assert result.code == 3, result.err  # report written, the stage died
    assert where.read_text().startswith("pipe:")
    stage = json.loads((out / "report.json").read_text())["stages"]["summary"]
    assert "exited with code 7" in stage["error"]
    assert stage["detail"].endswith("LAST LINE\n")
    assert 1000 < len(stage["detail"]) <= 4000


def test_a_trace_symlink_in_the_output_folder_is_not_followed(cli, tmp_path) -> None:
    """-o/trace points elsewhere: the run replaces the link, and deletes nothing there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    precious = elsewhere / "perfreport.123.pt.trace.json"
    precious.write_text("not perfreport's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "trace").symlink_to(elsewhere, target_is_directory=True)
    only = ("--only", "summary,profile,trace", "--profile-steps", "0,1,1")
    result = cli(SAMPLES / "mlp.py", "-o", out, *only)
    assert result.code == 0, result.err
    assert precious.read_text() == "not perfreport's"
    assert sorted(p.name for p in elsewhere.iterdir()) == [precious.name]
    assert not (out / "trace").is_symlink()
    data = json.loads((out / "report.json").read_text())
    assert data["stages"]["trace"]["status"] == "ok"
    assert (out / data["profile"]["trace_files"][0]).is_file()
    # Paths in the report name the files where they are now, not the staging folder
    assert [r["file"] for r in data["trace"]["ranks"]] == [
        str(out / data["profile"]["trace_files"][0])
    ]
    assert STAGING_TAG not in (out / "report.json").read_text()
