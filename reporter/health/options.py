"""The health stage's command-line flags (kept here so cli.py only wires them in)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reporter.errors import UsageError


def add_health_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--train-steps",
        type=int,
        metavar="N",
        help="run the health probe for exactly N training steps on a copy of the model (off "
        "by default; --train runs it for up to 20 steps within 3 s)",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adam", "adamw"),
        default="adam",
        help="optimizer of the health probe (default adam)",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="learning rate of the health probe (default: sgd 0.01, adam/adamw 0.001)",
    )
    p.add_argument(
        "--compare-optimizers",
        action="store_true",
        help="also run the same steps with SGD, SGD+momentum, Adam and AdamW and compare",
    )
    p.add_argument(
        "--logdir",
        metavar="DIR",
        help="TensorBoard run folder: put its scalar curves in the report",
    )


def health_options(args: argparse.Namespace) -> dict[str, Any]:
    """Checked flags, as RunOptions.stage_options["health"]; bad values are UsageErrors."""
    if args.train_steps is not None and args.train_steps < 0:
        raise UsageError(f"--train-steps {args.train_steps}: give 0 (no probe) or more")
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr {args.lr:g}: give a learning rate above 0, e.g. 0.001")
    logdir = None
    if args.logdir:
        path = Path(args.logdir).expanduser()
        if not path.is_dir():
            raise UsageError(
                f"--logdir {args.logdir}: no such folder (give the folder of TensorBoard runs)"
            )
        logdir = str(path.resolve())
    options: dict[str, Any] = {
        "optimizer": args.optimizer,
        "lr": args.lr,
        "compare_optimizers": args.compare_optimizers,
        "logdir": logdir,
    }
    if args.train_steps is not None:  # absent: the stage's default, with its time budget
        options["train_steps"] = args.train_steps
    return options
