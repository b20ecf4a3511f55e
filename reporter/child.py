"""Starting perfreport's own child processes (the model process, torchrun) and reading
their logs. Both kinds run in a session of their own, so the whole group can be killed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def child_env() -> dict[str, str]:
    """This environment, unbuffered (a crash must not lose the last prints), with the
    package importable even when perfreport runs from a checkout."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env


def start(
    cmd: list[str],
    log: IO[bytes],
    pass_fds: tuple[int, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`cmd` in a new session, stdout and stderr into `log`, no stdin."""
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**child_env(), **(extra_env or {})},
        start_new_session=True,
        pass_fds=pass_fds,
    )


def log_tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of a log, as text; "" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
