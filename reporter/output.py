"""Writes report files atomically: a reader sees the old file or the complete new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reporter.errors import UsageError


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder, or say in one line why it cannot be used."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"-o {path} is a file: give a folder for the report")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {path} is not writable: pick another with -o")
    return path


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
