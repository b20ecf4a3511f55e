"""Cost of the health stage's training probe against plain training steps.

Prints a table: per model, the seconds of N plain steps (same optimizer, same loss) and of
the instrumented probe, and the ratio. Run: .venv/bin/python -m benchmarks.health_probe
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and a benchmark named like a stdlib
# module (profile.py) would shadow it: put the repository there instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import torch  # noqa: E402

from reporter.health.probe import run_probe  # noqa: E402
from reporter.health.training import loss_curve, resolve_loss  # noqa: E402
from reporter.loader import load_subject  # noqa: E402
from reporter.options import RunOptions  # noqa: E402

ROOT = HERE.parent
STEPS = 20


def bench(model_file: Path, repeats: int) -> tuple[str, float, float]:
    """Best of `repeats` for each, interleaved, so a busy machine skews both alike."""
    subject = load_subject(RunOptions(model_file=str(model_file), out_dir="/tmp/unused"))
    loss, _ = resolve_loss(copy.deepcopy(subject.model), subject, 0)
    loss_curve(copy.deepcopy(subject.model), subject, loss, "adam", 1e-3, 2, 0)  # warm-up
    plain, probe = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        loss_curve(copy.deepcopy(subject.model), subject, loss, "adam", 1e-3, STEPS, 0)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_probe(
            copy.deepcopy(subject.model),
            lambda m: m(*subject.args, **subject.kwargs),
            loss,
            optimizer="adam",
            lr=1e-3,
            steps=STEPS,
            seed=0,
            loss_source="",
        )
        probe.append(time.perf_counter() - start)
    return model_file.name, min(plain), min(probe)


def main() -> None:
    """Usage: health_probe.py [MODEL_STEM ...] (default: every sample model)."""
    wanted = set(sys.argv[1:])
    repeats = 3
    print(
        f"{STEPS} Adam steps, best of {repeats}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'model':<28}{'plain s':>10}{'probe s':>10}{'ratio':>8}")
    for path in sorted((ROOT / "sample_models").glob("*.py")):
        if wanted and path.stem not in wanted:
            continue
        try:
            name, plain, probe = bench(path, repeats)
        except Exception as exc:  # a sample that needs other inputs: say so, go on
            print(f"{path.name:<28} skipped: {type(exc).__name__}: {exc}")
            continue
        print(f"{name:<28}{plain:>10.3f}{probe:>10.3f}{probe / plain:>8.2f}")


if __name__ == "__main__":
    main()
