"""Finding the tensors inside model inputs, outputs and op arguments."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._pytree import SUPPORTED_NODES, tree_leaves

_NO_TENSORS = (int, float, bool, str, torch.dtype, torch.device)


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor inside `value`, in order.

    Tuples, lists, dicts (Hugging Face's ModelOutput is one) and dataclasses are walked by
    hand: this runs once per op on the meta device and per module call in the graph
    recorder, where pytree costs about ten times more. Other registered pytree nodes are
    flattened by pytree; any other object holds no tensor.
    """
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    if value is None or isinstance(value, _NO_TENSORS):
        return []
    if hasattr(value, "__dataclass_fields__"):
        return [t for name in value.__dataclass_fields__ for t in tensors_in(getattr(value, name))]
    if type(value) in SUPPORTED_NODES:
        return [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]
    return []
