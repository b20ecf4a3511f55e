"""The optimizer comparison: the same steps from the same initial weights, four optimizers."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from reporter.health.training import DEFAULT_LR, OPTIMIZERS, LossFn, loss_curve
from reporter.report.health import OptimizerComparison, OptimizerRun

LABELS = {"sgd": "SGD", "sgd_momentum": "SGD+momentum", "adam": "Adam", "adamw": "AdamW"}


def compare_optimizers(
    model: torch.nn.Module,
    subject: Any,
    loss: LossFn,
    *,
    steps: int,
    seed: int,
    lr: float | None = None,
) -> OptimizerComparison:
    """Each optimizer trains its own deep copy of `model` (left untouched) for `steps` steps.

    `lr` None gives each optimizer its usual default (SGD 0.01, Adam/AdamW 0.001).
    """
    result = OptimizerComparison(steps=steps)
    for name in OPTIMIZERS:
        rate = lr if lr is not None else DEFAULT_LR[name]
        losses = loss_curve(copy.deepcopy(model), subject, loss, name, rate, steps, seed)
        result.runs.append(OptimizerRun(name=name, lr=rate, losses=losses, drop=loss_drop(losses)))
    ranked = [r for r in result.runs if r.drop is not None]
    if ranked:
        best = max(ranked, key=lambda r: r.drop)
        result.fastest = best.name
        result.statement = (
            f"{LABELS[best.name]} (lr {best.lr:g}) lowered the loss the most in {steps} steps "
            f"({100 * best.drop:.1f}% below its first value). This is a short probe on one "
            "batch: it says which optimizer starts fastest here, not which trains best."
        )
    else:
        result.statement = "No optimizer kept a finite loss over the probe."
    return result


def loss_drop(losses: list[float | None]) -> float | None:
    """(first - last) / |first|; None when either is missing or not finite."""
    if len(losses) < 2 or losses[0] is None or losses[-1] is None:
        return None
    first, last = losses[0], losses[-1]
    if not (math.isfinite(first) and math.isfinite(last)) or first == 0:
        return None
    return (first - last) / abs(first)
