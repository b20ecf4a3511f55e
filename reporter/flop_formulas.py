"""FLOP formulas for ops that FlopCounterMode has none for, in its own conventions.

PyTorch counts attention's matrix products for the CUDA kernels (flash, memory-efficient,
cuDNN) but not for the CPU flash kernel that ``scaled_dot_product_attention`` picks on CPU,
so a transformer's attention would count as zero there. Its shapes and its work are those
of the CUDA flash kernel, so it gets torch's own formulas: 2 matrix products forward, 5
backward (the scores are recomputed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _attention(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query, key, value)


def _attention_backward(
    grad_out: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any
) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def _formulas() -> dict[Any, Any]:
    """Op packet -> formula over shapes, for the ops this torch build has."""
    pairs = {
        "_scaled_dot_product_flash_attention_for_cpu": _attention,
        "_scaled_dot_product_flash_attention_for_cpu_backward": _attention_backward,
        "_scaled_dot_product_fused_attention_overrideable": _attention,
        "_scaled_dot_product_fused_attention_overrideable_backward": _attention_backward,
    }
    return {getattr(aten, name): f for name, f in pairs.items() if hasattr(aten, name)}


# For FlopCounterMode(custom_mapping=...): it passes shapes, not tensors, to each formula.
EXTRA_FLOP_FORMULAS = _formulas()
