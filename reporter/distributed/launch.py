"""Launch the ranks with PyTorch's own launcher (torch.distributed.run, i.e. torchrun).

torchrun starts each worker in a session of its own, so stopping torchrun's process group
does not reach them: on a timeout or Ctrl-C every process below torchrun is found in /proc
and killed, so no rank survives the run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reporter import child
from reporter.errors import UsageError
from reporter.option_schema import default

RANK_ENTRY = "reporter.distributed.rank_main"
GUARDED_RUN = "reporter.distributed.guarded_run"  # torchrun on perfreport's lifeline
LOG_TAIL_CHARS = 6000
# torchrun's failure summary: "[0]:\n  time : ...\n  rank : 1 (local_rank: 1)\n  exitcode : -6"
_SUMMARY_RANK = re.compile(
    r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)"
)


@dataclass
class LaunchSpec:
    nproc_per_node: int
    nnodes: int = 1
    rdzv_endpoint: str | None = None  # HOST:PORT; None: one node, standalone on loopback
    rdzv_id: str = "perfreport"
    timeout: float = default("timeout")  # seconds for the whole launch (--timeout)


@dataclass
class LaunchResult:
    command: list[str]
    returncode: int | None
    timed_out: bool
    seconds: float
    log_tail: str
    failed: dict[int, int] = field(default_factory=dict)  # rank -> exit code, from torchrun
    root_cause: list[int] = field(default_factory=list)  # torchrun's "first observed failure"


def check_spec(spec: LaunchSpec) -> None:
    """Bad launch flags are usage errors, raised before anything starts."""
    if spec.nproc_per_node < 1:
        raise UsageError(f"--nproc-per-node {spec.nproc_per_node}: give 1 or more processes")
    if spec.nnodes < 1:
        raise UsageError(f"--nnodes {spec.nnodes}: give 1 or more nodes")
    if spec.nnodes > 1 and not spec.rdzv_endpoint:
        raise UsageError(
            f"--nnodes {spec.nnodes} needs --rdzv-endpoint HOST:PORT (the same on every node)"
        )
    if spec.rdzv_endpoint is not None:
        host, _, port = spec.rdzv_endpoint.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"--rdzv-endpoint {spec.rdzv_endpoint!r}: give HOST:PORT, e.g. node0:29500"
            )


def torchrun_command(spec: LaunchSpec, options_path: Path) -> list[str]:
    """The torchrun command line that runs the rank entry point on every process."""
    cmd = [
        *child.python_command("torch.distributed.run"),
        "--nproc-per-node",
        str(spec.nproc_per_node),
    ]
    if spec.rdzv_endpoint:
        cmd += [
            "--nnodes",
            str(spec.nnodes),
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            spec.rdzv_endpoint,
            "--rdzv-id",
            spec.rdzv_id,
        ]
    else:
        cmd += ["--standalone"]  # one node: a free port on loopback, no endpoint needed
    # No restarts: a failed rank is a result to report, not something to retry.
    # --no-python: torchrun would start each rank as `python -u -m ...`, without -P.
    rank = [sys.executable, "-P", "-u", "-m", RANK_ENTRY, str(options_path)]
    return [*cmd, "--max-restarts", "0", "--no-python", *rank]


def launch(spec: LaunchSpec, options_path: Path, log_path: Path) -> LaunchResult:
    """Run torchrun to the end or the timeout; afterwards no process of the launch is left."""
    cmd = torchrun_command(spec, options_path)
    started = time.monotonic()
    returncode, timed_out = run_process_tree(cmd, spec.timeout, log_path)
    tail = child.log_tail(log_path, LOG_TAIL_CHARS)
    return LaunchResult(
        command=cmd,
        returncode=returncode,
        timed_out=timed_out,
        seconds=time.monotonic() - started,
        log_tail=tail,
        failed=failed_ranks_from_log(tail),
        root_cause=root_cause_ranks(tail),
    )


def run_process_tree(cmd: list[str], timeout: float, log_path: Path) -> tuple[int | None, bool]:
    """Run ``cmd`` with output to ``log_path`` until it exits or ``timeout`` seconds pass.

    Returns (exit code, timed out). Whatever happens, including Ctrl-C, every process it
    started is killed before this returns; should perfreport itself be killed, the
    lifeline (``guarded_run``) ends them.
    """
    seen: dict[int, str] = {}  # every process seen below the launcher -> its start time
    with (
        open(log_path, "wb") as log,
        child.guarded([*child.python_command(GUARDED_RUN), *cmd], log, timeout) as proc,
    ):
        try:
            timed_out = child.supervise(
                proc, timeout, lambda: seen.update(_with_start(descendants(proc.pid))), 0.2
            )
        finally:
            # Also after a normal exit: a worker that outlived torchrun has been handed to
            # init, so it is found by what was seen before, not by its parent any more.
            if proc.poll() is None:  # once reaped, its pid may already be someone else's
                kill_tree(proc.pid)
            kill_pids(p for p, start in seen.items() if _start_time(p) == start)
    return proc.returncode, timed_out


def failed_ranks_from_log(text: str) -> dict[int, int]:
    """Ranks and exit codes from torchrun's ChildFailedError summary."""
    return {int(rank): int(code) for rank, code in _SUMMARY_RANK.findall(text)}


def root_cause_ranks(text: str) -> list[int]:
    """The ranks torchrun names under "Root Cause (first observed failure)"."""
    _, found, after = text.rpartition("Root Cause")
    return sorted(failed_ranks_from_log(after)) if found else []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first found breadth-first), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        ppid = _ppid(int(entry))
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces: parse after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and every descendant with their process groups."""
    # Stop the launcher first so it cannot start new workers, then sweep until none is left
    # (a worker could fork while we look).
    victims = [pid, *descendants(pid)]
    for _ in range(5):
        for p in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
        # Zombies count as gone: the launcher is reaped by its Popen, the rest by init.
        victims = [p for p in descendants(pid)] + [p for p in victims if _alive(p)]
        if not victims:
            return
        time.sleep(0.05)


def kill_pids(pids: Iterable[int]) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a process from a later one given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _with_start(pids: list[int]) -> dict[int, str]:
    out = {}
    for p in pids:
        start = _start_time(p)
        if start is not None:
            out[p] = start
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2 :].split()[0] != "Z"
