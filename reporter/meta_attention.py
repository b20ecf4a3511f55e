"""Attention on the meta device as the CPU would run it.

On meta, ``F.scaled_dot_product_attention`` has no kernel to choose and takes its math
path, which holds batch x heads x S x S scores (and, for backward, the probabilities).
The CPU picks its fused flash kernel whenever that kernel applies: it keeps only the
output and one logsumexp float per query row. So on meta the passes ask the CPU's own
choice function, given CPU tensors of the same shapes, strides and dtypes, and call the
kernel it would pick: memory and FLOPs are those of the CPU run. (CUDA's flash and
memory-efficient kernels keep the same output and per-row logsumexp.)

Hugging Face's SDPA path decides whether the attention mask can be dropped (and
``is_causal`` used instead) by reading the mask's values, which meta tensors lack. On
meta that decision is taken as for a mask without padding, the usual sample input.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import _disable_current_modes

# transformers.masking_utils functions that read the padding mask to decide whether the
# attention mask can be skipped; each takes the padding mask as its first argument.
HF_MASKING_MODULE = "transformers.masking_utils"
HF_MASK_SKIP_CHECKS = ("_ignore_causal_mask_sdpa", "_ignore_bidirectional_mask_sdpa")

NOTE = (
    "Attention ran on the meta device as on the CPU: PyTorch's fused flash kernel where "
    "the CPU would pick it (no batch x heads x S x S scores held; backward keeps one "
    "logsumexp float per query row), its math path elsewhere"
)
HF_NOTE = (
    "; Hugging Face's SDPA mask was built as for an attention_mask without padding (on "
    "meta its values are unknown): with padding the real run also holds a "
    "batch x 1 x S x S mask per layer"
)


def hf_mask_checks_patchable() -> bool:
    """Whether this transformers has the mask checks that on_meta() answers."""
    try:
        module = importlib.import_module(HF_MASKING_MODULE)
    except Exception:  # noqa: BLE001 - no or broken transformers: nothing to patch
        return False
    return all(callable(getattr(module, name, None)) for name in HF_MASK_SKIP_CHECKS)


@contextlib.contextmanager
def on_meta(device: torch.device) -> Iterator[None]:
    """While a pass runs on meta: SDPA as the CPU runs it, HF's mask checks answerable."""
    if device.type != "meta":
        yield
        return
    with _hf_mask_checks_without_padding(), _CpuAttentionKernels():
        yield


class _CpuAttentionKernels(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            out = fused_like_cpu(*args, **kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def fused_like_cpu(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor | None:
    """SDPA on meta tensors through the CPU's flash kernel, as torch's CPU dispatch does
    (a boolean mask becomes an additive one of the query's dtype first); None where the
    CPU would take the math path, or the inputs are not plain meta tensors."""
    tensors = [t for t in (query, key, value, attn_mask) if t is not None]
    if not all(_plain_meta(t) for t in tensors):
        return None
    choice = cpu_choice(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    if choice != SDPBackend.FLASH_ATTENTION:
        return None
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        zero = torch.scalar_tensor(0.0, dtype=query.dtype, device=query.device)
        minus_inf = torch.scalar_tensor(-math.inf, dtype=query.dtype, device=query.device)
        attn_mask = torch.where(attn_mask, zero, minus_inf)
    kernel = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    return kernel(query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale)[0]


def cpu_choice(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None,
    dropout_p: float,
    is_causal: bool,
    scale: float | None,
    enable_gqa: bool,
) -> SDPBackend | None:
    """The backend the CPU picks for these inputs, asked of torch itself with empty CPU
    tensors of the same sizes, strides, dtypes and requires_grad (never written, so the
    pages are not touched; hidden from the passes' dispatch modes, which would count
    them); None when they cannot be allocated."""
    try:
        with _disable_current_modes():
            q, k, v, m = (_cpu_like(t) for t in (query, key, value, attn_mask))
            choice = torch._fused_sdp_choice(
                q, k, v, m, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa
            )
    except (RuntimeError, MemoryError):
        return None
    return SDPBackend(choice)


def _cpu_like(t: torch.Tensor | None) -> torch.Tensor | None:
    if t is None:
        return None
    like = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="cpu")
    return like.requires_grad_(t.requires_grad and torch.is_grad_enabled())


def _plain_meta(t: torch.Tensor) -> bool:
    return (
        t.device.type == "meta"
        and t.layout == torch.strided
        and not t.is_nested
        and type(t) in (torch.Tensor, torch.nn.Parameter)
    )


@contextlib.contextmanager
def _hf_mask_checks_without_padding() -> Iterator[None]:
    """HF's "can the mask be skipped" checks, given a meta padding mask, answer as for
    no padding (padding_mask=None); on real tensors they run unchanged."""
    module = _loaded(HF_MASKING_MODULE)
    originals = {name: getattr(module, name, None) for name in HF_MASK_SKIP_CHECKS}
    patched = {n: f for n, f in originals.items() if module is not None and callable(f)}
    for name, check in patched.items():
        setattr(module, name, _without_meta_padding(check))
    try:
        yield
    finally:
        for name, check in patched.items():
            setattr(module, name, check)


def _without_meta_padding(check: Callable[..., bool]) -> Callable[..., bool]:
    @functools.wraps(check)
    def wrapper(padding_mask: Any, *args: Any, **kwargs: Any) -> bool:
        if isinstance(padding_mask, torch.Tensor) and padding_mask.device.type == "meta":
            padding_mask = None
        return check(padding_mask, *args, **kwargs)

    return wrapper


def _loaded(name: str) -> Any:
    """The module if the model file already imported it: a model without transformers
    never pays for importing it."""
    return sys.modules.get(name)
