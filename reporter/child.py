"""Starting perfreport's own child processes (the model process, torchrun) and reading
their logs. Both kinds run in a session of their own, so the whole group can be killed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
    cmd: list[str],
    log: IO[bytes] | int,
    pass_fds: tuple[int, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`cmd` in a new session, stdout and stderr into `log`, no stdin."""
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env(extra_env),
        start_new_session=True,
        pass_fds=pass_fds,
    )


class OutputTail:
    """A child's stdout and stderr through a pipe, of which only the last `limit` bytes
    are kept: a model that prints in a loop (2.4 GB in 6 s) fills no disk and holds
    bounded memory. A thread reads the pipe until every writer has closed it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0  # bytes the child wrote
        self._tail = bytearray()
        read_fd, self.write_fd = os.pipe()
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self._thread.start()

    def _pump(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 1 << 16):
                self.total += len(chunk)
                self._tail += chunk
                if len(self._tail) > 2 * self.limit:
                    del self._tail[: -self.limit]
        finally:
            os.close(fd)

    def close_writer(self) -> None:
        """The parent's copy of the write end, once the child has its own."""
        os.close(self.write_fd)

    def text(self, wait_s: float = 5.0) -> str:
        """The last `limit` bytes, once the pipe is closed (or after `wait_s`: a process
        that left the group may still hold it)."""
        self._thread.join(wait_s)
        return bytes(self._tail[-self.limit :]).decode("utf-8", "replace")


def log_tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of a log, as text; "" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
