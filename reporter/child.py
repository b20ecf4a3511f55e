"""Starting perfreport's own child processes (the model process, torchrun) and reading
their logs. Both kinds run in a session of their own, so the whole group can be killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus ``extra``, unbuffered (a crash must not lose the last
    prints), with the package importable even when perfreport runs from a checkout."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env


def python_command(module: str, *args: str) -> list[str]:
    """`python -P -m module args`: -P (safe_path) keeps the current directory off sys.path,
    so a `reporter/` (or `torch/`) folder where the user stands cannot shadow perfreport's
    own package, while PYTHONPATH still works (unlike -I)."""
    return [sys.executable, "-P", "-m", module, *args]


def start(
    cmd: list[str], log: IO[bytes], extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`cmd` in a new session, stdout and stderr into `log`, no stdin."""
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env(extra_env),
        start_new_session=True,
    )


def log_tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of a log, as text; "" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
