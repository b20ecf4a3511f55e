"""Cost of the speed-of-light stage and of the training-step memory timeline.

GPT-2 small from ``transformers.GPT2Config()`` on CPU (sequence 64), as fresh perfreport
processes:

1. a default run: the roofline stage's seconds against the whole run's wall time
   (target: under 10%), with the ceilings already cached (the first run on a machine
   measures them once, about a second more);
2. the memory timeline's cost with ``--train`` (``memory.timeline.seconds``: the profile
   stage keeping its last training step's events, then categorising and checking them),
   against the training profile's seconds (target: under 20%). Whole-run stage seconds
   differ by about a second from run to run here, more than the timeline costs.

It also prints, for every model in sample_models/, the figures the roofline stage gives:
achieved FLOP/s, speed of light, headroom and the time split by regime.

Run: .venv/bin/python -m benchmarks.speed_of_light [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GPT2_FILE = """
import torch
from transformers import GPT2Config, GPT2LMHeadModel


def build_model():
    return GPT2LMHeadModel(GPT2Config()).eval()


def example_inputs():
    return {"input_ids": torch.randint(0, 50257, (1, 64))}
"""


def perfreport(model: Path, out: Path, *args: str) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reporter", str(model), "-o", str(out), "--format", "json", *args],
        cwd=REPO,
        check=False,
        capture_output=True,
    )
    wall = time.perf_counter() - start
    return wall, json.loads((out / "report.json").read_text())


def seconds(report: dict, stage: str) -> float:
    return float(report["stages"][stage].get("seconds") or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gpt2 = Path(tmp) / "gpt2_small.py"
        gpt2.write_text(GPT2_FILE)
        print("GPT-2 small, default run: roofline stage vs whole run")
        for i in range(args.repeat):
            wall, report = perfreport(gpt2, Path(tmp) / f"d{i}")
            stage = seconds(report, "roofline")
            print(f"  run {i + 1}: whole {wall:.2f} s, roofline {stage:.2f} s ({stage / wall:.1%})")
        print("GPT-2 small, --train: cost of the memory timeline against the training profile")
        for i in range(args.repeat):
            _, train = perfreport(gpt2, Path(tmp) / f"t{i}", "--only", "memory,profile", "--train")
            cost = train["memory"]["timeline"]["seconds"]
            prof = seconds(train, "profile")
            print(
                f"  run {i + 1}: timeline {cost:.2f} s (memory.timeline.seconds: keeping the "
                f"profile's last step, categorising, checking); training profile {prof:.2f} s; "
                f"timeline / profile {cost / prof:.1%}"
            )
        print("Sample models: achieved FLOP/s, speed of light, headroom, regime split")
        for model in sorted((REPO / "sample_models").glob("*.py")):
            _, r = perfreport(model, Path(tmp) / model.stem, "--only", "timing,roofline")
            m = r.get("roofline", {}).get("model")
            if not m:
                print(f"  {model.stem}: no roofline ({r['stages']['roofline']})")
                continue
            split = ", ".join(
                f"{k} {v / max(sum(m['regime_ms'].values()), 1e-12):.0%}"
                for k, v in m["regime_ms"].items()
            )
            print(
                f"  {model.stem}: {m['achieved_flops'] / 1e9:,.2f} GFLOP/s achieved, "
                f"latency {m['latency_ms']:.3f} ms, speed of light {m['speed_of_light_ms']:.3f} ms "
                f"({m['headroom']:,.1f}x headroom); {split}"
            )


if __name__ == "__main__":
    main()
