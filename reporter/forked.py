"""Run a Python-bound computation in a forked child while this process does another.

On the meta device the static passes are pure Python (meta kernels, dispatch modes), so
each is held to one core by the GIL; a forked child uses the second core. The child gets
the parent's state as it is at the fork, without pickling the model, and sends back a
JSON-able result through a pipe. Used only on Linux with two or more usable cores, and
only where nothing executes on a device (forking after CUDA or OpenMP work is unsafe).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reporter import child, lifetime


@dataclass
class Forked:
    pid: int
    fd: int  # read end of the pipe the result arrives on


def can_fork() -> bool:
    return sys.platform == "linux" and len(os.sched_getaffinity(0)) >= 2


def start(fn: Callable[[], Any], name: str) -> Forked | None:
    """Call ``fn`` in a forked child; None where forking is not used (see can_fork).
    ``name``: its fault point for tests, ``forked.NAME``."""
    if not can_fork():
        return None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the parent's code, never run its atexit
        code = 1
        try:
            os.close(read)
            lifetime.die_with_parent()
            child.inject_fault(f"forked.{name}")
            with os.fdopen(write, "wb", buffering=0) as pipe:
                child.EventWriter(pipe).emit("result", value=fn())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return Forked(pid, read)


def result(forked: Forked) -> Any | None:
    """The child's result, or None when it failed (the caller then computes it itself)."""
    with os.fdopen(forked.fd, "rb") as pipe:
        events = child.EventReader(pipe).read()
    _, status = os.waitpid(forked.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not events:
        return None
    return events[-1]["value"]
