"""The model process never outlives perfreport, nor its own deadline.

The model process runs in a session of its own (so perfreport can kill its whole group),
which also means a `kill -9` of perfreport, or of perfreport's process group as CI does,
does not reach it. So:

- perfreport holds the write end of a pipe, the *lifeline*; only the model process's
  guardian holds the read end. The kernel closes the write end however perfreport ends
  (exit, exception, SIGKILL), and the guardian reads end-of-file.
- The guardian is a small process forked by the model process before anything else runs
  in it (no threads, no torch), in the same process group. At end-of-file, or when the
  deadline passes, it kills the whole group: the model process, whatever the model started
  (a `subprocess.Popen`, a `multiprocessing` worker), and itself. Being a process of its own,
  it works even while the model holds the GIL in a C call.
- The model process also asks the kernel (PR_SET_PDEATHSIG) for SIGKILL when perfreport
  dies, the quickest way out for the process itself.

A process the model starts in a new session of its own (setsid) leaves the group and is not
reached: docs/threat-model.md says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import time

LIFELINE_ENV = "PERFREPORT_LIFELINE_FD"
DEADLINE_ENV = "PERFREPORT_DEADLINE_S"
PR_SET_PDEATHSIG = 1
# The parent stops the model process at --timeout; the guardian is the backstop after it.
DEADLINE_GRACE_S = 30.0


def lifeline() -> tuple[int, int]:
    """A pipe (read end for the model process, write end kept by perfreport)."""
    read_fd, write_fd = os.pipe()
    os.set_inheritable(read_fd, True)
    return read_fd, write_fd


def lifeline_env(read_fd: int, timeout_s: float) -> dict[str, str]:
    return {LIFELINE_ENV: str(read_fd), DEADLINE_ENV: repr(timeout_s + DEADLINE_GRACE_S)}


def guard_from_env() -> None:
    """In the model process, first thing: die with the parent, start the guardian."""
    fd_text = os.environ.pop(LIFELINE_ENV, None)
    deadline = float(os.environ.pop(DEADLINE_ENV, "inf"))
    die_with_parent()
    if fd_text is None:
        return
    fd = int(fd_text)
    if os.fork() == 0:
        _guardian(fd, deadline)  # never returns
    os.close(fd)  # only the guardian waits on the lifeline


def die_with_parent() -> None:
    """SIGKILL from the kernel when the parent process ends (Linux only; else nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _guardian(fd: int, deadline_s: float) -> None:
    """Wait for the lifeline to close or the deadline; then kill the whole process group."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        end = time.monotonic() + deadline_s
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], min(left, 3600.0))
            if ready and os.read(fd, 1) == b"":
                break  # perfreport is gone
    finally:
        os.killpg(0, signal.SIGKILL)
        os._exit(0)


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in the model process's group (after every run)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
