"""Fidelity and cost of the profile and timing stages.

1. For every model in sample_models/: the median latency the timing stage reports versus
   an independent ``torch.utils.benchmark.Timer.blocked_autorange`` median, measured in
   the same process on the same inputs (target: within 5%). The two are interleaved
   (stage, Timer, stage, Timer) and the table shows each, so drift is visible.
2. GPT-2 small from ``transformers.GPT2Config()`` on CPU: wall time of a whole
   ``perfreport`` run versus the "anchors" doing less, in one process: torchinfo summary
   + torch.profiler 5 steps + torchview graph (depth 1: deeper fails on GPT-2). Both are timed as fresh processes, imports
   and model construction included, alternated --repeat times; the quickest run of each is
   the steadiest comparison on a shared machine. Target ratio <= 1.0. perfreport without
   its timing stage is timed too: the anchors measure no latency.

Run: .venv/bin/python -m benchmarks.profile [--skip-gpt2] [--seq 64]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reporter.loader import load_subject  # noqa: E402
from reporter.options import RunOptions  # noqa: E402
from reporter.stages import StageContext, run_stage  # noqa: E402

ROUNDS = 5

GPT2_FILE = """
import torch
from transformers import GPT2Config, GPT2LMHeadModel


def build_model():
    return GPT2LMHeadModel(GPT2Config()).eval()


def example_inputs():
    return {{"input_ids": torch.randint(0, 50257, (1, {seq}))}}
"""

ANCHORS = """
import sys, time, torch, torchinfo, torchview
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config()).eval()
ids = torch.randint(0, 50257, (1, {seq}))
out = sys.argv[1]
torchinfo.summary(model, input_data={{"input_ids": ids}}, depth=3, verbose=0)
with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=0, warmup=0, active=5), record_shapes=True,
        on_trace_ready=tensorboard_trace_handler(out)) as prof:
    for _ in range(5):
        model(input_ids=ids)
        prof.step()
# depth 1: torchview 0.2.7 raises KeyError in render_edges on GPT-2 at depth 2 or 3
graph = torchview.draw_graph(model, input_data={{"input_ids": ids}}, depth=1,
                             save_graph=True, directory=out, filename="graph")
"""


def fidelity(seconds: float) -> list[tuple[str, float, float, float, float, float]]:
    """(model, stage median, Timer median, difference, difference of the best rounds,
    Timer's spread between rounds)."""
    rows = []
    for path in sorted((REPO / "sample_models").glob("*.py")):
        with tempfile.TemporaryDirectory() as tmp:
            opts = RunOptions(
                model_file=str(path),
                out_dir=tmp,
                stage_options={"timing": {"seconds": seconds}},
            )
            subject = load_subject(opts)
            ctx = StageContext(subject=subject, options=opts)
            stage, timer = [], []
            for _ in range(ROUNDS):
                stage.append(run_stage("timing", ctx).latency_ms.median)
                t = benchmark.Timer(
                    stmt="f()",
                    globals={"f": subject.call},
                    num_threads=torch.get_num_threads(),
                )
                with torch.inference_mode():
                    timer.append(t.blocked_autorange(min_run_time=seconds).median * 1e3)
            s, b = statistics.median(stage), statistics.median(timer)
            # Load from neighbours only adds time: the quietest round of each is the
            # steadiest comparison of the two methods on a shared machine.
            best = (min(stage) - min(timer)) / min(timer)
            spread = (max(timer) - min(timer)) / min(timer)
            rows.append((path.stem, s, b, (s - b) / b, best, spread))
    return rows


def print_fidelity(seconds: float) -> None:
    print(
        f"\nLatency fidelity: timing stage vs torch.utils.benchmark.Timer, interleaved, "
        f"median of {ROUNDS} rounds each"
    )
    print(
        f"{'model':<18}{'stage ms':>11}{'Timer ms':>11}{'diff':>9}{'best-round diff':>17}"
        f"{'Timer spread':>14}  within 5%"
    )
    for name, s, b, d, best, spread in fidelity(seconds):
        ok = "yes" if abs(d) <= 0.05 else "NO"
        print(f"{name:<18}{s:>11.3f}{b:>11.3f}{d:>+9.1%}{best:>+17.1%}{spread:>14.1%}  {ok}")
    print("(Timer spread: how far Timer's own medians moved between rounds on this machine)")


def run_timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def gpt2(seq: int, repeat: int) -> tuple[list[float], list[float], list[float], dict[str, float]]:
    """Wall times of ``repeat`` whole runs of each, alternated so drift hits all alike:
    perfreport, the anchors, perfreport without its timing stage (the anchors time
    nothing); and the stage seconds of the quickest whole perfreport run."""
    import json

    reports, anchors_s, untimed = [], [], []
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "gpt2_small.py"
        model_file.write_text(textwrap.dedent(GPT2_FILE.format(seq=seq)))
        anchors = Path(tmp) / "anchors.py"
        anchors.write_text(ANCHORS.format(seq=seq))
        for i in range(repeat):
            anchors_s.append(
                run_timed([sys.executable, str(anchors), str(Path(tmp) / f"anchor_out{i}")])
            )
            out = Path(tmp) / f"report{i}"
            cmd = [sys.executable, "-m", "reporter", str(model_file), "-o", str(out)]
            untimed.append(run_timed([*cmd, "--format", "json", "--skip", "timing"]))
            reports.append(run_timed([*cmd, "--format", "json"]))
            if reports[-1] == min(reports):
                report = json.loads((out / "report.json").read_text())
                best = {k: v.get("seconds") or 0.0 for k, v in report["stages"].items()}
    return reports, anchors_s, untimed, best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--skip-gpt2", action="store_true")
    p.add_argument("--skip-fidelity", action="store_true")
    p.add_argument("--seq", type=int, default=64, help="GPT-2 input length (default 64)")
    p.add_argument("--repeat", type=int, default=3, help="whole runs of each (default 3)")
    p.add_argument("--seconds", type=float, default=1.0, help="timing budget per measurement")
    p.add_argument("--threads", type=int, help="torch threads for part 1 (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    if not args.skip_fidelity:
        print_fidelity(args.seconds)
    if args.skip_gpt2:
        return
    reports, anchors, untimed, stages = gpt2(args.seq, args.repeat)
    print(
        f"\nGPT-2 small (GPT2Config(), input 1x{args.seq}), CPU, fresh processes, "
        f"{args.repeat} alternated runs each"
    )
    print(f"{'':<52}{'best':>8}{'median':>9}")
    for label, times in (
        ("whole perfreport run", reports),
        ("anchors: torchinfo + profiler 5 steps + torchview", anchors),
        ("perfreport --skip timing", untimed),
    ):
        print(f"{label:<52}{min(times):>7.1f}s{statistics.median(times):>8.1f}s")
    for label, times in (
        ("ratio, whole run (target <= 1.0)", reports),
        ("ratio, --skip timing", untimed),
    ):
        ratio_best = min(times) / min(anchors)
        ratio_median = statistics.median(times) / statistics.median(anchors)
        print(f"{label:<52}{ratio_best:>8.2f}{ratio_median:>9.2f}")
    print("quickest run's stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items() if v))


if __name__ == "__main__":
    main()
