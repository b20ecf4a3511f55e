"""Finding and reading trace files: every bad input is a one-line UsageError naming it."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import pytest

from reporter.errors import UsageError
from reporter.trace import analyse_paths, find_trace_files
from tests.conftest import TRACE_DATA

TRACES = TRACE_DATA
SMALL = TRACES / "cpu_mlp_training.json.gz"

MINIMAL = {
    "traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 10, "dur": 5},
    ]
}


def usage_error(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        analyse_paths([path])
    message = str(info.value)
    assert "\n" not in message, "the CLI prints one line"
    return message


def test_missing_path(tmp_path: Path) -> None:
    message = usage_error(tmp_path / "nope.json")
    assert "nope.json" in message and "no such file" in message


def test_empty_directory(tmp_path: Path) -> None:
    message = usage_error(tmp_path)
    assert str(tmp_path) in message and "no trace files" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt.trace.json"
    path.write_bytes(b"")
    message = usage_error(path)
    assert "empty.pt.trace.json" in message and "empty" in message


def test_truncated_gzip(tmp_path: Path) -> None:
    data = SMALL.read_bytes()
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    message = usage_error(path)
    assert "cut.json.gz" in message and "truncated gzip" in message


def test_truncated_json(tmp_path: Path) -> None:
    text = gzip.decompress(SMALL.read_bytes())
    path = tmp_path / "cut.pt.trace.json"
    path.write_bytes(text[: int(len(text) * 0.6)])
    message = usage_error(path)
    assert "cut.pt.trace.json" in message and "truncated JSON" in message


def test_corrupt_json(tmp_path: Path) -> None:
    body = json.dumps(MINIMAL).replace('"aten::mm"', "aten::mm") + " " * 10_000
    path = tmp_path / "bad.json"
    path.write_text(body)
    message = usage_error(path)
    assert "bad.json" in message and "corrupt JSON" in message and "line 1" in message


def test_corrupt_gzip(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(json.dumps(MINIMAL).encode() * 50))
    for i in range(20, len(blob) - 20, 7):  # damage the deflate stream, keep the header
        blob[i] ^= 0xFF
    path = tmp_path / "bad.json.gz"
    path.write_bytes(bytes(blob))
    message = usage_error(path)
    assert "bad.json.gz" in message and "gzip" in message


def test_json_that_is_not_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"schema_version": 1, "model": {}}))
    message = usage_error(path)
    assert "report.json" in message and "not a Kineto/Chrome trace" in message
    path.write_text("[1, 2, 3]")
    assert "not a Kineto/Chrome trace" in usage_error(path)


def test_chrome_trace_without_profiler_events(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"traceEvents": [{"ph": "X", "name": "x", "ts": 1, "dur": 1}]}))
    assert "not a Kineto trace" in usage_error(path)


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "noise.json"
    path.write_bytes(bytes(range(256)) * 4)
    message = usage_error(path)
    assert "noise.json" in message


def test_plain_json_and_array_form(tmp_path: Path) -> None:
    plain = tmp_path / "t.json"
    plain.write_text(json.dumps(MINIMAL))
    assert analyse_paths([plain]).ranks[0].cpu_ops[0].name == "aten::mm"
    array = tmp_path / "a.json"
    array.write_text(json.dumps(MINIMAL["traceEvents"]))
    assert analyse_paths([array]).ranks[0].cpu_ops[0].name == "aten::mm"


def test_folder_prefers_profiler_files_and_searches_subfolders(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{}")  # a report folder also holds report.json
    run = tmp_path / "trace" / "run1"
    run.mkdir(parents=True)
    for name in ("host_1.100.pt.trace.json", "host_2.200.pt.trace.json.gz"):
        target = run / name
        data = json.dumps(MINIMAL).encode()
        target.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (run / "notes.txt").write_text("not a trace")
    found = find_trace_files(tmp_path)
    assert [p.name for p in found] == ["host_1.100.pt.trace.json", "host_2.200.pt.trace.json.gz"]
    section = analyse_paths([tmp_path])
    assert len(section.ranks) == 2
    assert [r.rank for r in section.ranks] == [0, 1]  # numbered by file order
    assert all(not r.rank_known for r in section.ranks)


def test_same_file_twice_counts_once(tmp_path: Path) -> None:
    copy = tmp_path / SMALL.name
    shutil.copy(SMALL, copy)
    section = analyse_paths([copy, tmp_path])
    assert section.files == [str(copy)]


def test_one_decoder_on_every_route(tmp_path: Path) -> None:
    """msgspec decodes a file whole; an event that is not an object sends it event by
    event (that event skipped); NaN literals, which msgspec refuses, send it to json.loads
    and msgspec.convert. Every route gives the same figures, and counts every event."""
    from reporter.trace.decode import RawTrace, Trace, decode

    doc = json.loads(gzip.decompress(SMALL.read_bytes()))
    events = doc["traceEvents"]
    marker = {"ph": "i", "name": "marker", "pid": 1, "tid": 1, "ts": float("nan")}
    docs = {
        "whole": (doc, Trace),
        "by_event": (dict(doc, traceEvents=[42, *events]), RawTrace),
        "stdlib": (dict(doc, traceEvents=[*events, 42, marker]), type(None)),
    }
    figures = {}
    for name, (d, route) in docs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(d))
        assert type(decode(path.read_bytes())) is route, name
        rank = analyse_paths([path]).ranks[0]
        assert rank.events == len(d["traceEvents"]), name
        figures[name] = dataclasses.replace(rank, file="", events=0)
    assert figures["whole"].step_count == 3
    assert figures["by_event"] == figures["whole"]
    assert figures["stdlib"] == figures["whole"]
