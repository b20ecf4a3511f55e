"""Where the time of `perfreport model.py --nproc-per-node N` goes, and what is left over.

    python -m benchmarks.distributed [--nproc 2] [--model sample_models/mlp.py] [--repeat 1]

Prints one row per run: the launch's wall time, the bare cost of torchrun starting N ranks
that only `import torch` (the floor any torchrun launch pays), the profiled steps' own
time (sum of the ranks' mean step wall time x steps), the trace analysis time, and how many
processes of the run were alive after it (must be 0). Also the load average, because on a
shared 2-core machine the import times follow the neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def survivors() -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"reporter.distributed.rank_main" in cmd:
                n += 1
    return n


def bare_torchrun(nproc: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "imp.py"
        script.write_text("import torch\n")
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc-per-node",
                str(nproc),
                str(script),
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def one_run(model: Path, nproc: int, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "reporter",
                str(model),
                "-o",
                out,
                "--nproc-per-node",
                str(nproc),
                "--format",
                "json",
            ],
            check=True,
            capture_output=True,
            env=env,
            cwd=REPO,
        )
        wall = time.perf_counter() - started
        report = json.loads((Path(out) / "report.json").read_text())
    d = report["distributed"]
    steps = sum(len(r["step_seconds"]) for r in d["ranks"]) / max(1, len(d["ranks"]))
    step_s = max(sum(r["step_seconds"]) for r in d["ranks"])
    return {
        "wall_s": wall,
        "launch_s": d["seconds"],
        "steps": steps,
        "steps_s": step_s,
        "analysis_s": report["trace"]["analysis_seconds"],
        "survivors": survivors(),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--model", default=str(REPO / "sample_models" / "mlp.py"))
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    floor = bare_torchrun(args.nproc)
    print(f"bare torchrun, {args.nproc} ranks importing torch: {floor:.1f} s")
    print("| run | perfreport wall s | launch s | steps | steps s | trace analysis s | left |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i in range(args.repeat):
        r = one_run(Path(args.model), args.nproc, env)
        print(
            f"| {i + 1} | {r['wall_s']:.1f} | {r['launch_s']:.1f} | {r['steps']:.0f} | "
            f"{r['steps_s']:.2f} | {r['analysis_s']:.3f} | {r['survivors']} |"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
