"""Find Kineto trace files and read them into JSON data, with one clear error per bad file."""

from __future__ import annotations

import gc
import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reporter.errors import UsageError
from reporter.trace.decode import decode, from_objects, records
from reporter.trace.events import TraceEvents
from reporter.trace.gunzip import gunzip_bounded

# torch.profiler's tensorboard_trace_handler writes "<host>_<pid>.<n>.pt.trace.json[.gz]";
# export_chrome_trace writes any name the user chose, so plain *.json counts too.
TRACE_SUFFIXES = (".pt.trace.json", ".pt.trace.json.gz", ".json", ".json.gz")
_MAX_DEPTH = 3  # TensorBoard's layout is logdir/run/files; the report dir adds trace/


def is_trace_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in TRACE_SUFFIXES)


def find_trace_files(path: str | Path) -> list[Path]:
    """The trace files at ``path``: the file itself, or those in the folder (sorted).

    In a folder, ``*.pt.trace.json(.gz)`` files win over other JSON (a report folder also
    holds report.json); subfolders are searched a few levels down.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"{path} is neither a file nor a directory")
    found = sorted(_walk(path, 0), key=lambda p: str(p))
    profiler = [p for p in found if ".pt.trace.json" in p.name.lower()]
    files = profiler or found
    if not files:
        raise UsageError(
            f"{path} holds no trace files (looked for *.pt.trace.json, *.json and their .gz)"
        )
    return files


def _walk(folder: Path, depth: int) -> list[Path]:
    out: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise UsageError(f"{folder}: cannot list ({exc.strerror or exc})") from None
    for entry in entries:
        if entry.is_file() and is_trace_name(entry):
            out.append(entry)
        elif entry.is_dir() and depth < _MAX_DEPTH and not entry.name.startswith("."):
            out.extend(_walk(entry, depth + 1))
    return out


def read_bytes(path: Path) -> bytes | bytearray:
    """The file's JSON text as bytes, decompressed when it is gzip (by magic, not by name)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a trace file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw:
        raise UsageError(f"{path} is empty (0 bytes): the profiler did not finish writing it")
    if raw[:2] == b"\x1f\x8b":
        text = gunzip_bounded(raw, path)  # refuses a gzip bomb in bounded memory
        try:
            raw = text if text is not None else gzip.decompress(raw)
        except EOFError:
            raise UsageError(
                f"{path} is a truncated gzip file (it ends before the end of the stream): "
                "copy it again or let the profiler finish"
            ) from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise UsageError(f"{path} is a corrupt gzip file ({exc})") from None
        # isspace, not strip: strip would copy the whole text (240 MB for 1 M events).
        if not raw or raw.isspace():
            raise UsageError(f"{path} is empty once decompressed")
    elif raw.isspace():
        raise UsageError(f"{path} is empty (only whitespace)")
    return raw


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off inside, restored after: building a heap of fresh records, it
    would rescan that growing heap many times for nothing (nothing here makes cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_json(raw: bytes, path: Path) -> Any:
    """json.loads with the cyclic GC paused (halves the time on a 200k-event trace)."""
    try:
        with gc_paused():
            return json.loads(raw)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not text JSON (binary data)") from None
    except json.JSONDecodeError as exc:
        # Parsing stopped at the very end, or inside a string that never closes: the writer
        # stopped early. Anywhere else the file is damaged.
        tail = len(exc.doc.rstrip()) if isinstance(exc.doc, str) else len(raw)
        if exc.pos >= tail - 1 or exc.msg.startswith("Unterminated string"):
            raise UsageError(
                f"{path} is truncated JSON (it ends at line {exc.lineno} in the middle of "
                "the data): the profiler did not finish writing it"
            ) from None
        raise UsageError(
            f"{path} is corrupt JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None


def trace_events(data: Any, path: Path) -> tuple[list[Any], dict[str, Any]]:
    """(events, metadata) from either Chrome-trace form: {"traceEvents": [...]} or [...]."""
    if isinstance(data, dict):
        events = data.get("traceEvents")
        if not isinstance(events, list):
            keys = ", ".join(list(data)[:5]) or "nothing"
            raise UsageError(
                f"{path} is not a Kineto/Chrome trace (no traceEvents list; it has {keys})"
            )
        return events, data
    if isinstance(data, list) and (not data or isinstance(data[0], dict)):
        return data, {}
    raise UsageError(f"{path} is not a Kineto/Chrome trace (JSON {type(data).__name__})")


def load_trace(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """Read one trace file: (its events, its top-level metadata)."""
    return trace_events(parse_json(read_bytes(path), path), path)


def read_trace(path: Path, fast: bool = True) -> TraceEvents:
    """One trace file as compact records: decoded by msgspec, or where msgspec cannot
    parse the text (or not ``fast``: tests compare both) parsed by json.loads, which also
    words every error, and converted into the same structs.

    The JSON text (40 MB for 200k events) is dropped as soon as it is parsed, before the
    records are built: that lowers the peak memory by the records' size.
    """
    raw = read_bytes(path)
    doc = decode(raw) if fast else None
    if doc is not None:
        del raw
        return records(doc, str(path))
    events, meta = trace_events(parse_json(raw, path), path)
    del raw
    count = len(events)
    doc = from_objects(events, meta)
    del events, meta
    return records(doc, str(path), count)
