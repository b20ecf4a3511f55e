"""Attention on the meta device as the CPU would run it.

On meta, ``F.scaled_dot_product_attention`` has no kernel to choose and takes its math
path, which holds batch x heads x S x S scores (and, for backward, the probabilities).
The CPU picks its fused flash kernel whenever that kernel applies: it keeps only the
output and one logsumexp float per query row. So on meta the passes ask the CPU's own
choice function, given CPU tensors of the same shapes, strides and dtypes, and call the
kernel it would pick: memory and FLOPs are those of the CPU run. (CUDA's flash and
memory-efficient kernels keep the same output and per-row logsumexp.)

Hugging Face's SDPA path decides whether the attention mask can be dropped (and
``is_causal`` used instead) by reading the padding mask's values, which meta tensors lack.
The loader builds the sample input on the CPU and notes whether its ``attention_mask``
pads; on meta that decision is then taken as the CPU takes it (without padding: no mask;
with padding: a batch x 1 x S x S mask), and as for no padding where that is unknown.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
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
UNKNOWN_PADDING_NOTE = (
    "; Hugging Face's choice to drop the attention mask, which reads the mask's values, "
    "was made as for a mask without padding: with padding the real run also holds a "
    "batch x 1 x S x S mask per attention call"
)


def note(padding: bool | None) -> str:
    """What the report says about attention on meta, for a Hugging Face SDPA model."""
    return NOTE + (UNKNOWN_PADDING_NOTE if padding is None else "") + "."


def attention_padding(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bool | None:
    """Whether the forward's ``attention_mask`` argument (Hugging Face's 2-D padding mask,
    read on the CPU before the inputs move to meta) masks any position: False without
    one, None where its values cannot say (not a 2-D integer or boolean tensor)."""
    try:
        bound = inspect.signature(model.forward).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = kwargs
    mask = bound.get("attention_mask")
    if mask is None:
        return False
    if not isinstance(mask, torch.Tensor) or mask.device.type == "meta" or mask.dim() != 2:
        return None
    if mask.is_floating_point() or mask.is_complex():
        return None  # an additive mask, not a padding mask
    return not bool(mask.all())


def hf_mask_checks_patchable() -> bool:
    """Whether this transformers has the mask checks that on_meta() answers."""
    try:
        module = importlib.import_module(HF_MASKING_MODULE)
    except Exception:  # noqa: BLE001 - no or broken transformers: nothing to patch
        return False
    return all(callable(getattr(module, name, None)) for name in HF_MASK_SKIP_CHECKS)


@contextlib.contextmanager
def on_meta(device: torch.device, padding: bool | None = None) -> Iterator[None]:
    """While a pass runs on meta: SDPA as the CPU runs it, HF's mask checks answered from
    ``padding`` (whether the sample attention_mask pads; None: unknown, taken as not)."""
    if device.type != "meta":
        yield
        return
    with _hf_mask_checks(bool(padding)), _CpuAttentionKernels():
        yield


class _CpuAttentionKernels(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        # Layers repeat the same shapes: the CPU is asked once per distinct call.
        self.choices: dict[tuple[Any, ...], SDPBackend | None] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            out = fused_like_cpu(self.choices, *args, **kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def fused_like_cpu(
    choices: dict[tuple[Any, ...], SDPBackend | None],
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
    CPU would take the math path, or the inputs are not plain meta tensors. ``choices``
    remembers the CPU's choice by the inputs' layouts."""
    tensors = [t for t in (query, key, value, attn_mask) if t is not None]
    if not all(_plain_meta(t) for t in tensors):
        return None
    call = (query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    described = tuple(_describe(a) for a in call) + (torch.is_grad_enabled(),)
    if described not in choices:
        choices[described] = cpu_choice(*call)
    choice = choices[described]
    if choice != SDPBackend.FLASH_ATTENTION:
        return None
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = _additive(attn_mask, query.dtype)
    kernel = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    return kernel(query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale)[0]


def _describe(value: Any) -> Any:
    """What the CPU's choice can depend on: a tensor's layout, not its data."""
    if not isinstance(value, torch.Tensor):
        return value
    return (tuple(value.shape), value.stride(), value.dtype, value.requires_grad)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where a boolean mask lets attention through, -inf elsewhere, as torch's CPU
    dispatch converts it; the two scalars are freed on return, as in torch."""
    zero = torch.scalar_tensor(0.0, dtype=dtype, device=mask.device)
    minus_inf = torch.scalar_tensor(-math.inf, dtype=dtype, device=mask.device)
    return torch.where(mask, zero, minus_inf)


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
        with _disable_current_modes(), _unfilled():
            q, k, v, m = (_cpu_like(t) for t in (query, key, value, attn_mask))
            choice = torch._fused_sdp_choice(
                q, k, v, m, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa
            )
    except (RuntimeError, MemoryError):
        return None
    return SDPBackend(choice)


@contextlib.contextmanager
def _unfilled() -> Iterator[None]:
    """torch.empty that leaves memory untouched even under deterministic algorithms
    (which would fill it with NaN, committing every page)."""
    deterministic = torch.utils.deterministic
    fill = deterministic.fill_uninitialized_memory
    deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        deterministic.fill_uninitialized_memory = fill


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
def _hf_mask_checks(padding: bool) -> Iterator[None]:
    """HF's "can the mask be dropped" checks, given a meta padding mask, answer from
    ``padding``; on real tensors they run unchanged."""
    module = _loaded(HF_MASKING_MODULE)
    originals = {name: getattr(module, name, None) for name in HF_MASK_SKIP_CHECKS}
    patched = {n: f for n, f in originals.items() if module is not None and callable(f)}
    for name, check in patched.items():
        setattr(module, name, _answered(check, padding))
    try:
        yield
    finally:
        for name, check in patched.items():
            setattr(module, name, check)


def _answered(check: Callable[..., bool], padding: bool) -> Callable[..., bool]:
    """The check with a meta padding mask replaced: by None (no padding), or, with
    padding, "no" (the mask is needed, as the CPU finds reading its values)."""

    @functools.wraps(check)
    def wrapper(padding_mask: Any, *args: Any, **kwargs: Any) -> bool:
        if not (isinstance(padding_mask, torch.Tensor) and padding_mask.device.type == "meta"):
            return check(padding_mask, *args, **kwargs)
        return False if padding else check(None, *args, **kwargs)

    return wrapper


def _loaded(name: str) -> Any:
    """The module if the model file already imported it: a model without transformers
    never pays for importing it."""
    return sys.modules.get(name)
