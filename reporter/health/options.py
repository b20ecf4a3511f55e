"""Checks of the health stage's command-line flags (defined in reporter/option_schema.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reporter.errors import UsageError


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
