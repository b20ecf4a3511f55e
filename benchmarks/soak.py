"""Soak: run perfreport on every sample model many times in one process.

    python -m benchmarks.soak [--rounds 20] [--stages summary,flops,memory]

Prints, per round, the parent's RSS, the temporary files perfreport left behind and any
model process still alive, so leaks show up as growth.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import tempfile
import time
from pathlib import Path

from reporter.cli import main as perfreport

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def rss_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def leftovers() -> int:
    """perfreport's temporary folders in the temp dir (any process's: run it alone)."""
    return len(list(Path(tempfile.gettempdir()).glob("perfreport-*")))


def workers_alive() -> int:
    """Model processes started by this process that are still running."""
    count = 0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == me and b"reporter.worker" in (entry / "cmdline").read_bytes():
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stages", default="summary,flops,memory")
    args = parser.parse_args()
    models = sorted(SAMPLES.glob("*.py"))
    start_files = leftovers()
    print(
        f"{'round':>5} {'seconds':>8} {'RSS MiB':>8} {'temp dirs left':>15} {'workers alive':>14}"
    )
    with tempfile.TemporaryDirectory() as out:
        for round_no in range(1, args.rounds + 1):
            start = time.perf_counter()
            for model in models:
                with contextlib.redirect_stderr(io.StringIO()):
                    code = perfreport(
                        [str(model), "-o", f"{out}/{model.stem}", "--only", args.stages]
                    )
                assert code == 0, f"{model.name} exited {code}"
            print(
                f"{round_no:>5} {time.perf_counter() - start:>8.1f} {rss_mib():>8.1f} "
                f"{leftovers() - start_files:>15} {workers_alive():>14}"
            )


if __name__ == "__main__":
    main()
