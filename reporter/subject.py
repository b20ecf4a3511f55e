"""What a model file yields: the model, its sample inputs and the optional helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Subject:
    model: torch.nn.Module
    args: tuple[Any, ...]  # positional inputs
    kwargs: dict[str, Any]  # keyword inputs
    device: torch.device
    source: str  # the model file
    name: str  # the model file's stem
    found_by: str  # how the model was found, e.g. "build_model()"
    input_found_by: str
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None
    eval_batches: Callable[[], Iterable[Any]] | None = None
    checkpoint: str | None = None
    built_in_train_mode: bool = False  # model.training as the file returned it
    namespace: dict[str, Any] = field(default_factory=dict)  # the model file's globals
    notes: list[str] = field(default_factory=list)  # said in the report (e.g. auto meta)
    # On meta: whether the sample attention_mask pads (None: no such mask or unknown)
    attention_padding: bool | None = None

    def call(self) -> Any:
        """One forward pass on the sample inputs."""
        return self.model(*self.args, **self.kwargs)

    @property
    def inputs(self) -> tuple[Any, ...] | dict[str, Any]:
        """The inputs as a user would pass them (for loss_fn)."""
        if self.kwargs and not self.args:
            return self.kwargs
        return self.args if len(self.args) != 1 else self.args[0]
