"""Group ops and kernels into the kinds of work that bound a model's speed."""

from __future__ import annotations

import re
from collections.abc import Callable

CATEGORIES = ("matmul/conv", "elementwise", "reductions", "copies", "other")

_MATMUL = frozenset(
    [
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "addbmm",
        "matmul",
        "linear",
        "einsum",
        "addmv",
        "mv",
        "dot",
        "vdot",
        "tensordot",
        "mkldnn_linear",
        "addmm_activation",
    ]
)
_MATMUL_PREFIXES = (
    "conv",
    "mkldnn_conv",
    "cudnn_conv",
    "miopen_conv",
    "slow_conv",
    "thnn_conv",
    "scaled_dot_product",
    "flash_attention",
    "efficient_attention",
    "cudnn_attention",
)
_REDUCTION = frozenset(
    [
        "sum",
        "mean",
        "max",
        "min",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "prod",
        "norm",
        "std",
        "var",
        "var_mean",
        "std_mean",
        "logsumexp",
        "cumsum",
        "cumprod",
        "topk",
        "sort",
        "all",
        "any",
        "count_nonzero",
        "embedding_bag",
        "mse_loss",
        "cross_entropy_loss",
        "binary_cross_entropy",
        "linalg_vector_norm",
    ]
)
_REDUCTION_PREFIXES = (
    "max_pool",
    "avg_pool",
    "adaptive_",
    "nll_loss",
    "native_layer_norm",
    "layer_norm",
    "native_batch_norm",
    "batch_norm",
    "native_group_norm",
    "group_norm",
    "rms_norm",
    "fused_rms_norm",
    "softmax",
    "log_softmax",
    "safe_softmax",
)
_COPY = frozenset(
    [
        "copy",
        "to",
        "to_copy",
        "contiguous",
        "clone",
        "cat",
        "stack",
        "index_select",
        "gather",
        "scatter",
        "scatter_add",
        "index",
        "index_put",
        "embedding",
        "pad",
        "constant_pad_nd",
        "repeat",
        "repeat_interleave",
        "flip",
        "roll",
        "narrow_copy",
        "masked_select",
        "take",
        "copy_from",
        "copy_from_and_resize",
        "fill",
        "zero",
        "zeros",
        "ones",
        "empty",
        "empty_like",
        "empty_strided",
        "full",
        "new_empty",
        "new_zeros",
        "new_ones",
        "new_full",
        "resize",
        "local_scalar_dense",
        "item",
    ]
)
_ELEMENTWISE = frozenset(
    [
        "add",
        "sub",
        "mul",
        "div",
        "relu",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "exp",
        "log",
        "pow",
        "sqrt",
        "rsqrt",
        "neg",
        "abs",
        "clamp",
        "clamp_min",
        "clamp_max",
        "where",
        "threshold",
        "dropout",
        "native_dropout",
        "bernoulli",
        "masked_fill",
        "addcmul",
        "addcdiv",
        "lerp",
        "maximum",
        "minimum",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "hardtanh",
        "hardswish",
        "leaky_relu",
        "elu",
        "softplus",
        "erf",
        "sin",
        "cos",
        "reciprocal",
        "sign",
        "floor",
        "ceil",
        "round",
        "trunc",
        "fmod",
        "remainder",
        "mish",
        "glu",
        "tril",
        "triu",
        "square",
        "sigmoid_backward",
        "tanh_backward",
        "rsub",
        "log1p",
        "expm1",
        "exp2",
    ]
)
_ELEMENTWISE_PREFIXES = ("foreach_", "fused_adam", "fused_sgd", "logical_", "bitwise_")
_SUFFIXES = ("_backward_data", "_backward_input", "_backward", "_out", "_")


def op_category(name: str) -> str:
    """'aten::addmm' -> 'matmul/conv'; unknown or non-aten names -> 'other'.

    Backward and in-place variants count with their forward op ('threshold_backward' is
    elementwise, 'convolution_backward' matmul/conv).
    """
    base = name.split("::", 1)[-1].lstrip("_")
    for suffix in _SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    if base in _MATMUL or base.startswith(_MATMUL_PREFIXES):
        return "matmul/conv"
    if base in _REDUCTION or base.startswith(_REDUCTION_PREFIXES):
        return "reductions"
    if base in _COPY:
        return "copies"
    if base in _ELEMENTWISE or base.startswith(_ELEMENTWISE_PREFIXES):
        return "elementwise"
    return "other"


_KERNEL_RULES = (
    (
        re.compile(r"gemm|gemv|cutlass|conv|wgrad|dgrad|fprop|xmma|sm\d+_|flash|fmha|attention"),
        "matmul/conv",
    ),
    (re.compile(r"reduce|softmax|norm|pool|sum|mean|argmax|topk|sort|scan"), "reductions"),
    (re.compile(r"memcpy|memset|copy|cat|gather|scatter|index|transpose|permute"), "copies"),
    (
        re.compile(r"elementwise|vectorized|unrolled|activation|relu|gelu|add|mul|dropout"),
        "elementwise",
    ),
)


def kernel_category(name: str) -> str:
    """CUDA kernel names are mangled C++; match the words that library kernels carry."""
    lower = name.lower()
    for pattern, category in _KERNEL_RULES:
        if pattern.search(lower):
            return category
    return "other"


def group_times(times: dict[str, float], categorise: Callable[[str], str]) -> dict[str, float]:
    """Sum name -> time into category -> time, every category present (zero if none)."""
    out = {c: 0.0 for c in CATEGORIES}
    for name, t in times.items():
        out[categorise(name)] += t
    return out
