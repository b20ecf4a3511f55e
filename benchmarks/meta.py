"""Static analysis of Llama-shaped models on the meta device: time, peak memory, exactness.

    python -m benchmarks.meta            # 7B and 70B (Llama-2 shapes), input 1x2048 tokens

Runs the real `perfreport` command (summary, flops, memory stages) on a generated model
file and compares its parameter total with the published figure and its FLOPs with
FlopCounterMode run directly on the same meta model.
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
                    "--only",
                    "summary,flops,memory",
                    "--format",
                    "json",
                ],
                check=True,
                capture_output=True,
            )
            seconds = time.perf_counter() - start
            peak_mib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
            report = json.loads((out / "report.json").read_text())
            reference = flop_counter_reference(path)
        params = report["model"]["parameters"]["total"]
        flops = report["flops"]["forward_total"]
        rows.append(
            (name, seconds, peak_mib, params, params == expected, flops, flops == reference)
        )
    print(
        f"{'model':<12} {'time s':>7} {'peak RSS MiB':>13} {'parameters':>16} {'exact':>6} "
        f"{'forward FLOPs':>20} {'= FlopCounterMode':>18}"
    )
    for name, s, mib, p, p_ok, f, f_ok in rows:
        print(f"{name:<12} {s:>7.2f} {mib:>13.0f} {p:>16,} {p_ok!s:>6} {f:>20,} {f_ok!s:>18}")


if __name__ == "__main__":
    main()
