"""Time the module graph end to end (record, fold, DOT, `dot -Tsvg`) and size its SVG.

Cases: the MNIST CNN sample, GPT-2 small from config (random weights, no download), and
stacks of 1,000 and 10,000 Linear+LayerNorm+GELU blocks. Target: < 5 s and < 1 MB each.
Run: .venv/bin/python -m benchmarks.graph
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds profile.py, which would shadow the standard library's profile module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

from reporter.graph.build import build_graph  # noqa: E402
from reporter.graph.dot import render  # noqa: E402


def mnist() -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("mnist_cnn", REPO / "sample_models/mnist_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MNISTNet().eval(), (module.example_inputs(),), {}


def gpt2_small() -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    import transformers

    transformers.logging.set_verbosity_error()
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    return model, (), {"input_ids": torch.randint(0, 50257, (1, 32))}


def stack(blocks: int) -> Callable[[], tuple[nn.Module, tuple[Any, ...], dict[str, Any]]]:
    def make() -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
        width = 32
        layers = [
            nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU())
            for _ in range(blocks)
        ]
        return nn.Sequential(*layers).eval(), (torch.randn(4, width),), {}

    return make


CASES = [
    ("MNIST CNN (sample)", mnist),
    ("GPT-2 small (config)", gpt2_small),
    ("1,000 blocks Linear+LN+GELU", stack(1000)),
    ("10,000 blocks Linear+LN+GELU", stack(10000)),
]


def plain_forward_seconds(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    """One forward without recording, one thread as the recorder uses: the floor to compare."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        with torch.no_grad():
            model(*args, **kwargs)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    torch.manual_seed(0)
    print(
        f"{'case':<30} {'modules':>8} {'calls':>7} {'depth':>5} {'nodes':>5} {'edges':>5} "
        f"{'forward s':>9} {'graph s':>8} {'dot s':>6} {'total s':>8} {'CPU s':>6} {'SVG KB':>7}"
    )
    for label, make in CASES:
        model, args, kwargs = make()
        modules = sum(1 for _ in model.modules())
        forward = plain_forward_seconds(model, args, kwargs)
        start, cpu_start = time.perf_counter(), time.process_time()
        built = build_graph(model, args, kwargs, title=label)
        t_dot = time.perf_counter()
        svg = render(built.dot, ["svg"])["svg"]
        end = time.perf_counter()
        # CPU time of this process and of dot, which on a busy machine is what the wall time
        # would be without the other processes competing for the cores.
        cpu = time.process_time() - cpu_start + _children_cpu()
        s = built.section
        print(
            f"{label:<30} {modules:>8,} {s.calls_recorded:>7,} {s.depth:>5} {len(s.nodes):>5} "
            f"{len(s.edges):>5} {forward:>9.2f} {t_dot - start:>8.2f} {end - t_dot:>6.2f} "
            f"{end - start:>8.2f} {cpu:>6.2f} {len(svg) / 1024:>7.1f}"
        )


_children_seen = 0.0


def _children_cpu() -> float:
    """CPU seconds of child processes (dot) since the last call."""
    global _children_seen
    times = os.times()
    total = times.children_user + times.children_system
    spent, _children_seen = total - _children_seen, total
    return spent


if __name__ == "__main__":
    _children_cpu()
    main()
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        "graph s = record + fold + DOT text; forward s = one plain forward, 1 thread"
    )
