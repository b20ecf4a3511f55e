"""Static analysis of Llama-shaped models on the meta device: time, peak memory, exactness.

    python -m benchmarks.meta            # 7B and 70B (Llama-2 shapes), input 1x2048 tokens

Runs the real `perfreport` command (the whole report: every stage that can run on meta,
HTML, JSON and Markdown) on a generated model file and compares its parameter total with
the published figure and its FLOPs with FlopCounterMode run directly on the same meta model.

Importing the model file (Python, torch and transformers) is the file's own cost and is
paid by anything that uses it; it is timed on its own in a bare process and shown apart,
so "perfreport's own" time is the whole run minus that.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    # name: (hidden, intermediate, layers, heads, kv_heads, expected parameters)
    "llama-2-7b": (4096, 11008, 32, 32, 32, 6_738_415_616),
    "llama-2-70b": (8192, 28672, 80, 64, 8, 68_976_648_192),
}

MODEL_FILE = """
import torch
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = LlamaConfig(hidden_size={h}, intermediate_size={i}, num_hidden_layers={n},
                     num_attention_heads={a}, num_key_value_heads={kv}, vocab_size=32000,
                     attn_implementation="eager")

def build_model():
    return LlamaForCausalLM(CONFIG)

def example_inputs():
    ids = torch.randint(0, 32000, (1, 2048))
    return {{"input_ids": ids, "attention_mask": torch.ones_like(ids)}}
"""


def flop_counter_reference(model_file: Path) -> int:
    """FlopCounterMode alone on the same meta model, in a separate process."""
    code = f"""
import runpy, torch
from torch.utils.flop_counter import FlopCounterMode
ns = runpy.run_path({str(model_file)!r})
with torch.device("meta"):
    m = ns["build_model"]().eval()
    x = ns["example_inputs"]()
with torch.no_grad(), FlopCounterMode(display=False) as c:
    m(**x)
print(c.get_total_flops())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def import_seconds(model_file: Path, repeats: int = 3) -> float:
    """Best wall time of a bare process that only imports the model file."""
    code = f"import runpy; runpy.run_path({str(model_file)!r})"
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rows = []
    for name, (h, i, n, a, kv, expected) in CONFIGS.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name.replace('-', '_')}.py"
            path.write_text(MODEL_FILE.format(h=h, i=i, n=n, a=a, kv=kv))
            out = Path(tmp) / "out"
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reporter",
                    str(path),
                    "--device",
                    "meta",
                    "-o",
                    str(out),
                ],
                check=True,
                capture_output=True,
            )
            seconds = time.perf_counter() - start
            peak_mib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
            report = json.loads((out / "report.json").read_text())
            reference = flop_counter_reference(path)
            imports = import_seconds(path)
        params = report["model"]["parameters"]["total"]
        flops = report["flops"]["forward_total"]
        stages = {k: v["seconds"] for k, v in report["stages"].items() if v["status"] == "ok"}
        rows.append(
            (name, seconds, imports, peak_mib, params == expected, flops == reference, stages)
        )
    print(
        f"{'model':<12} {'whole run s':>11} {'file import s':>13} {'perfreport own s':>16} "
        f"{'peak RSS MiB':>12} {'params exact':>12} {'FLOPs = FlopCounterMode':>23}"
    )
    for name, total, imports, mib, p_ok, f_ok, _ in rows:
        print(
            f"{name:<12} {total:>11.2f} {imports:>13.2f} {total - imports:>16.2f} "
            f"{mib:>12.0f} {p_ok!s:>12} {f_ok!s:>23}"
        )
    print("\nstage seconds (inside the model process):")
    for name, *_, stages in rows:
        print(f"  {name:<12} " + "  ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print("\ntargets: 70B < 10 s and < 2 GB peak RSS; 7B < 3 s")


if __name__ == "__main__":
    main()
