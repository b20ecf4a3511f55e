"""The training step perfreport profiles: forward, loss, backward and AdamW on a deep copy.

One definition serves the profile stage (its recorded steps) and the memory timeline
(which reads the last of them, or records one of its own when the profile stage does not
run), so both describe the same step. Each phase is a profiler range.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.profiler import record_function

from reporter.stages.passes import training_loss

# Profiler range of each phase of the step (they show in the trace as user annotations).
PHASE_RANGES = {
    "forward": "perfreport.forward",
    "backward": "perfreport.backward",
    "optimizer": "perfreport.optimizer_step",
}


@dataclass
class TrainStep:
    model: torch.nn.Module  # the deep copy the step trains
    optimizer: torch.optim.Optimizer
    run: Callable[[], None]


def train_step(subject: Any, lr: float = 1e-4) -> TrainStep | None:
    """A step on a deep copy in train mode, so the weights other stages analyse never
    change; None when the output has no floating tensor that requires grad."""
    model = copy.deepcopy(subject.model).train()
    params = [p for p in model.parameters() if p.requires_grad]
    probe = model(*subject.args, **subject.kwargs)
    loss = training_loss(subject, probe) if params else None
    if loss is None or not loss.requires_grad:
        return None
    del probe, loss
    optimizer = torch.optim.AdamW(params, lr=lr)

    def run() -> None:
        # Gradients stay until the next step starts, as in a training loop.
        optimizer.zero_grad(set_to_none=True)
        with record_function(PHASE_RANGES["forward"]):
            output = model(*subject.args, **subject.kwargs)
            loss = training_loss(subject, output)
        with record_function(PHASE_RANGES["backward"]):
            loss.backward()
        with record_function(PHASE_RANGES["optimizer"]):
            optimizer.step()

    return TrainStep(model, optimizer, run)
