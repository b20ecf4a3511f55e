"""The pieces every training loop here shares: optimizers, the loss, the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from reporter.errors import UsageError
from reporter.tensors import tensors_in

OPTIMIZERS = ("sgd", "sgd_momentum", "adam", "adamw")
# Learning rates that are each optimizer's usual starting point.
DEFAULT_LR = {"sgd": 0.01, "sgd_momentum": 0.01, "adam": 1e-3, "adamw": 1e-3}

LossFn = Callable[[Any], torch.Tensor]


def make_optimizer(name: str, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    raise UsageError(f"--optimizer {name}: use one of sgd, adam, adamw")


def trainable(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Unique trainable parameters with their names (a tied tensor appears once)."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def default_loss(output: Any, seed: int) -> tuple[LossFn, str]:
    """A loss with a real training signal for a model file without loss_fn.

    Classifier-shaped output (2-D or 3-D, last dim >= 2): cross-entropy against fixed random
    class targets; any other floating output: MSE to a fixed random tensor. The targets are
    drawn once from a generator seeded with the run's seed, so every optimizer and every
    run sees the same objective.
    """
    floats = [t for t in tensors_in(output) if t.is_floating_point()]
    if not floats:
        raise ValueError("the model's output holds no floating-point tensor to train on")
    first = floats[0]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if first.dim() in (2, 3) and first.shape[-1] >= 2:
        classes = first.shape[-1]
        targets = torch.randint(0, classes, first.shape[:-1], generator=gen).to(first.device)

        def cross_entropy(out: Any) -> torch.Tensor:
            logits = _first_float(out)
            return F.cross_entropy(logits.reshape(-1, classes).float(), targets.reshape(-1))

        return cross_entropy, (
            f"default: cross-entropy of the first output ({classes} classes) against fixed "
            f"random targets (seed {seed})"
        )
    target = torch.randn(first.shape, generator=gen).to(first.device)

    def mse(out: Any) -> torch.Tensor:
        return F.mse_loss(_first_float(out).float(), target)

    return mse, f"default: MSE of the first output to a fixed random tensor (seed {seed})"


def _first_float(output: Any) -> torch.Tensor:
    return next(t for t in tensors_in(output) if t.is_floating_point())


def resolve_loss(
    model: torch.nn.Module, subject: Any, seed: int, sample: Any = None
) -> tuple[LossFn, str]:
    """The model file's loss_fn(output, inputs) if it has one, else default_loss.

    default_loss reads only the output's structure and shapes: `sample`, an output of the
    eval-mode model on the sample input that another stage already has, saves a forward.
    """
    if subject.loss_fn is not None:
        return (lambda out: subject.loss_fn(out, subject.inputs)), "loss_fn(output, inputs)"
    if sample is None:
        with torch.no_grad():
            sample = model(*subject.args, **subject.kwargs)
    return default_loss(sample, seed)


def loss_curve(
    model: torch.nn.Module,
    subject: Any,
    loss: LossFn,
    optimizer: str,
    lr: float,
    steps: int,
    seed: int,
) -> list[float]:
    """Plain training steps on the sample input; the loss before each step."""
    torch.manual_seed(seed)  # same dropout masks for every optimizer
    model.train()
    opt = make_optimizer(optimizer, [p for _, p in trainable(model)], lr)
    losses: list[float] = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        value = loss(model(*subject.args, **subject.kwargs))
        losses.append(float(value.detach()))
        if not torch.isfinite(value):
            break
        value.backward()
        opt.step()
    return losses
