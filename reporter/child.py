"""perfreport's child processes: starting and watching them, hearing from them, saying how
they ended, and making them fail on purpose in tests.

Three kinds of child use it: the model process (reporter.worker), torchrun's ranks
(reporter.distributed) and a pass forked beside the model process (reporter.forked).

- Starting: a new session, so the whole group can be killed; stdout and stderr into a log
  or a pipe of which only the tail is kept; `-P` so a user's folder cannot shadow the
  package. ``run_guarded`` adds the lifeline of reporter.lifetime (the child's guardian
  kills the group when perfreport dies or the deadline passes; PR_SET_PDEATHSIG), the
  timeout, and a kill of the group after every run.
- The event channel: one JSON object per line, each line appended by one unbuffered write
  and read back as it grows. A child killed mid-write leaves a torn last line, which the
  reader drops; the lines before it stand.
- ``describe_exit``: the one wording for how a child ended (exit code or signal).
- ``inject_fault``: ``PERFREPORT_FAULT=POINT[:KIND]`` makes a child fail at a named point.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reporter import lifetime

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


# ------------------------------------------------------------------ how a child ended
def describe_exit(code: int | None, model_code: bool = True) -> str:
    """How a process ended, from its exit code (negative: the signal that ended it), as the
    predicate of a sentence: "the model process " + this. ``model_code``: the process ran
    the model file, whose own exit calls explain an unexpected code."""
    if code is None:
        return "did not finish"
    if code < 0:
        name = signal_name(-code)
        if name == "SIGKILL":
            return "was killed (SIGKILL: most often the kernel's out-of-memory killer)"
        if name == "SIGSEGV":
            return "crashed (segmentation fault)"
        return f"was ended by {name}"
    if model_code:
        return f"exited with code {code} (the model code may have called os._exit or exit)"
    return f"exited with code {code}"


def signal_name(signum: int) -> str:
    """SIGABRT for 6; "signal 99" for a number this system has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# ------------------------------------------------------------------ the event channel
class EventWriter:
    """Appends events to an unbuffered binary sink (a file opened with "ab", buffering=0,
    a pipe, a BytesIO): each line goes out in one write, nothing waits in a buffer, and a
    signal handler may write an event of its own at any moment."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink

    @classmethod
    def append_to(cls, path: Path | str) -> EventWriter:
        return cls(open(path, "ab", buffering=0))  # noqa: SIM115 - held for the process's life

    def emit(self, event: str, **data: Any) -> None:
        line = memoryview((json.dumps({"event": event, **data}) + "\n").encode())
        while line:  # a raw write may take less than the whole line
            line = line[self.sink.write(line) :]


class EventReader:
    """The events of a binary stream, as far as whole lines go: a line still being
    written (or torn by a crash) stays back until its end arrives."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        """The events completed since the last read (for a pipe: up to end-of-file)."""
        *lines, self._partial = (self._partial + self.stream.read()).split(b"\n")
        return [json.loads(line) for line in lines if line]


def read_event_file(path: Path) -> list[dict[str, Any]]:
    """Every whole event of a file; [] when it does not exist (the child never wrote)."""
    try:
        with open(path, "rb") as stream:
            return EventReader(stream).read()
    except FileNotFoundError:
        return []


# ------------------------------------------------------------------ faults, for tests
FAULT_ENV = "PERFREPORT_FAULT"


@dataclass(frozen=True)
class Fault:
    """What ``PERFREPORT_FAULT=POINT[:KIND]`` asks for at ``point``.

    POINT names where a child checks (``stage.flops``, ``rank1.step.2``,
    ``forked.training_pass``); a POINT also matches the points below it (``rank1.step``:
    every step of rank 1). KIND: raise (the default), crash (abort), exit (code 3), kill
    (SIGKILL, as the out-of-memory killer does), hang, sleep=SECONDS (then go on)."""

    point: str
    kind: str

    def strike(self) -> None:
        if self.kind == "crash":
            os.abort()
        if self.kind == "exit":
            os._exit(3)
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "hang":
            time.sleep(10**6)
        if self.kind.startswith("sleep="):
            time.sleep(float(self.kind.removeprefix("sleep=")))
            return
        raise RuntimeError(f"fault injected at {self.point}")


def fault_at(point: str) -> Fault | None:
    """The fault the environment asks for at ``point``, or None."""
    target, _, kind = os.environ.get(FAULT_ENV, "").partition(":")
    if not target or not (point == target or point.startswith(target + ".")):
        return None
    return Fault(point, kind or "raise")


def inject_fault(point: str) -> None:
    """Fail here when the environment asks for a fault at ``point`` (see Fault)."""
    fault = fault_at(point)
    if fault is not None:
        fault.strike()


# ------------------------------------------------------------------ starting, watching
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


def supervise(
    proc: subprocess.Popen[bytes], timeout: float, tick: Callable[[], None], every_s: float
) -> bool:
    """Call ``tick`` every ``every_s`` seconds while ``proc`` runs. True when ``timeout``
    seconds passed first: ``proc`` is then still running, for the caller to kill."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        tick()
        if time.monotonic() > deadline:
            return True
        time.sleep(every_s)
    return False


@dataclass
class Ending:
    """How a child run ended."""

    returncode: int | None
    timed_out: bool
    output: str  # the tail of its stdout and stderr


@contextlib.contextmanager
def guarded(
    cmd: list[str],
    log: IO[bytes] | int,
    timeout: float,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` (a child that calls ``lifetime.guard_from_env`` first) started on
    perfreport's lifeline, its guardian's deadline after ``timeout`` seconds. However the
    block is left (Ctrl-C and SIGTERM included), the child's process group is then killed
    and the child reaped: nothing it started in its group is left running."""
    read_fd, lifeline = lifetime.lifeline()
    env = {**lifetime.lifeline_env(read_fd, timeout), **(extra_env or {})}
    try:
        try:
            proc = start(cmd, log, (read_fd,), env)
        finally:
            os.close(read_fd)  # only the child's guardian waits on it
        try:
            yield proc
        finally:
            # The guardian keeps the group (and so its id) alive until killed here: the id
            # cannot have been reused, even when the child itself has already been reaped.
            lifetime.kill_group(proc.pid)
            proc.wait()
    finally:
        os.close(lifeline)


def run_guarded(
    cmd: list[str],
    events: Path,
    on_event: Callable[[dict[str, Any]], None],
    timeout: float,
    extra_env: dict[str, str] | None = None,
    output_limit: int = 4000,
) -> Ending:
    """Run ``cmd`` (see ``guarded``) to its end or ``timeout`` seconds, handing each event
    it appends to ``events`` to ``on_event`` as it arrives."""
    output = OutputTail(output_limit)
    events.touch()
    with open(events, "rb") as stream:
        reader = EventReader(stream)

        def deliver() -> None:
            for event in reader.read():
                on_event(event)

        try:
            with guarded(cmd, output.write_fd, timeout, extra_env) as proc:
                output.close_writer()  # the child holds its own copy
                timed_out = supervise(proc, timeout, deliver, 0.05)
        finally:
            output.close_writer()  # also when the child could not be started
        deliver()
    return Ending(proc.returncode, timed_out, output.text())


class OutputTail:
    """A child's stdout and stderr through a pipe, of which only the last `limit` bytes
    are kept: a model that prints in a loop (2.4 GB in 6 s) fills no disk and holds
    bounded memory. A thread reads the pipe until every writer has closed it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tail = bytearray()
        read_fd, self.write_fd = os.pipe()
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self._thread.start()

    def _pump(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 1 << 16):
                self._tail += chunk
                if len(self._tail) > 2 * self.limit:
                    del self._tail[: -self.limit]
        finally:
            os.close(fd)

    def close_writer(self) -> None:
        """The parent's copy of the write end, once the child has its own (once only)."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

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
