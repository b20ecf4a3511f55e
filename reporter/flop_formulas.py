"""FLOP formulas for ops that FlopCounterMode has none for, in its own conventions.

Each is tested against an independent count: torch's own count of the ordinary path
where there is one, the arithmetic worked by hand otherwise (tests/test_flop_formulas.py).

- PyTorch counts attention's matrix products for the CUDA kernels (flash,
  memory-efficient, cuDNN) but not for the CPU flash kernel that
  ``scaled_dot_product_attention`` picks on CPU, so a transformer's attention would count
  as zero there. Its shapes and its work are those of the CUDA flash kernel, so it is
  counted as torch counts that one: 2 matrix products forward, 5 backward (the scores are
  recomputed). The arithmetic is written out here because torch's own helpers reject
  grouped-query shapes before torch 2.5.
- ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` in eval mode without
  gradients take a "fast path": one fused op each, whose inner products FlopCounterMode
  never sees, so a whole encoder would count as zero. Their formulas add up the products
  the ordinary path runs (projections, the two attention products, the feed-forward
  layers), so both paths count the same. Nested (padded) inputs count their real tokens
  only, which is what the fused kernels compute.
- ``nn.LSTM`` on CPU runs each layer as one oneDNN op (``mkldnn_rnn_layer``), and on
  CUDA ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` run whole as one cuDNN op: zero again. Their
  formula is the ordinary path's: every token (steps x batch; packed sequences: the real
  ones) times every weight matrix, of every layer and direction. Their backward computes
  the gradients of the input, the hidden state and the weights: twice the forward. (The
  ordinary path skips gradients nothing needs, such as the initial hidden state's.)
- Matrix-vector and vector products (``mv``, ``addmv``, ``dot``, ``vdot``) and
  ``addbmm``: what ``x @ v`` on a vector runs. Each is its multiply-adds.
- Quantized and fused matrix products: ``_int_mm`` (int8), ``_weight_int8pack_mm`` and
  ``_weight_int4pack_mm`` (weight-only int8/int4, as torchao runs LLMs), and
  ``_addmm_activation`` (a Linear fused with its GELU/ReLU): 2 x m x k x n each, the
  output's last dimension giving n where the weight is packed.

A multiply-add is 2 FLOPs, as in FlopCounterMode; bias additions are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import addmm_flop, baddbmm_flop, mm_flop

aten = torch.ops.aten


def _attention(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    """Scores (q @ k^T) and weighted sum (p @ v) for every query head; grouped-query
    attention shares key and value heads, which changes no product's size."""
    batch, heads, q_len, head_dim = query
    kv_len, v_dim = key[-2], value[-1]
    return 2 * batch * heads * q_len * kv_len * (head_dim + v_dim)


def _attention_backward(
    grad_out: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any
) -> int:
    """torch's count for the flash kernels' backward: the scores again, then the
    gradients of the scores and of v, q and k."""
    batch, heads, q_len, head_dim = query
    kv_len, v_dim = key[-2], value[-1]
    return 2 * batch * heads * q_len * kv_len * (3 * head_dim + 2 * v_dim)


def _sequences(t: torch.Tensor) -> list[tuple[int, int]]:
    """(batch, length) groups of a (batch, length, features) or (length, features)
    tensor; a nested tensor gives one group per sequence, of its own length."""
    if t.is_nested:
        return [(1, int(size[0])) for size in t._nested_tensor_size().tolist()]
    if t.dim() == 2:
        return [(1, t.shape[0])]
    return [(t.shape[0], t.shape[1])]


def mha_flops(batch: int, q_len: int, kv_len: int, embed: int) -> int:
    """Projections of q (q_len tokens), k and v (kv_len tokens each), the scores and the
    weighted sum (heads x head_dim = embed), and the output projection."""
    projections = 2 * batch * embed * embed * (q_len + 2 * kv_len)
    attention = 2 * 2 * batch * q_len * kv_len * embed
    output = 2 * batch * q_len * embed * embed
    return projections + attention + output


def _native_mha(query: Any, key: Any, value: Any, embed_dim: int, *args: Any, **kw: Any) -> int:
    pairs = zip(_sequences(query), _sequences(key), strict=True)
    return sum(mha_flops(b, q_len, kv_len, embed_dim) for (b, q_len), (_, kv_len) in pairs)


def _encoder_layer(src: Any, embed_dim: int, *args: Any, **kwargs: Any) -> int:
    hidden = args[12].shape[0]  # ffn_weight_1: (dim_feedforward, embed_dim)
    return sum(
        mha_flops(b, n, n, embed_dim) + 2 * 2 * b * n * embed_dim * hidden
        for b, n in _sequences(src)
    )


def _rnn_layer(input: Any, w_ih: Any, w_hh: Any, *args: Any, **kwargs: Any) -> int:
    tokens = math.prod(input) // input[-1]  # steps x batch; packed: the real tokens
    return 2 * tokens * (math.prod(w_ih) + math.prod(w_hh))


def _rnn_layer_backward(input: Any, w_ih: Any, w_hh: Any, *args: Any, **kwargs: Any) -> int:
    return 2 * _rnn_layer(input, w_ih, w_hh)


def cudnn_rnn_flops(input: Any, weights: Any, *args: Any, **kwargs: Any) -> int:
    """One cuDNN RNN over all layers and directions: its matrices are the 2-D weights."""
    tokens = math.prod(input) // input[-1]
    return 2 * tokens * sum(math.prod(w) for w in weights if len(w) == 2)


def _cudnn_rnn_backward(input: Any, weights: Any, *args: Any, **kwargs: Any) -> int:
    return 2 * cudnn_rnn_flops(input, weights)


def _mv(mat: Any, vec: Any, *args: Any, **kwargs: Any) -> int:
    return 2 * mat[0] * mat[1]


def _addmv(bias: Any, mat: Any, vec: Any, *args: Any, **kwargs: Any) -> int:
    return _mv(mat, vec)


def _dot(a: Any, b: Any, *args: Any, **kwargs: Any) -> int:
    return 2 * a[0]


def _packed_weight_mm(a: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """(m, k) activations times a packed (n, k) weight: m and k from the activations,
    n from the output, whatever the packing."""
    return 2 * math.prod(a[:-1]) * a[-1] * out_shape[-1]


def _over_shapes(formula: Callable[..., int]) -> Callable[..., int]:
    """One of torch's registered formulas as it was before registration turned it into a
    function of tensors: FlopCounterMode does that again for custom formulas."""
    return getattr(formula, "__wrapped__", formula)


def _raw(formula: Callable[..., int]) -> Callable[..., int]:
    """Mark a formula as taking the op's own arguments (tensors), not their shapes: a
    nested tensor has no single shape to give."""

    def counted(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        return formula(*args, **kwargs)

    counted._get_raw = True  # type: ignore[attr-defined]  # read by FlopCounterMode
    return counted


def _formulas() -> dict[Any, Any]:
    """Op packet -> formula, for the ops this torch build has."""
    pairs = {
        "_scaled_dot_product_flash_attention_for_cpu": _attention,
        "_scaled_dot_product_flash_attention_for_cpu_backward": _attention_backward,
        "_scaled_dot_product_fused_attention_overrideable": _attention,
        "_scaled_dot_product_fused_attention_overrideable_backward": _attention_backward,
        "_native_multi_head_attention": _raw(_native_mha),
        "_transformer_encoder_layer_fwd": _raw(_encoder_layer),
        "mkldnn_rnn_layer": _rnn_layer,
        "mkldnn_rnn_layer_backward": _rnn_layer_backward,
        "_cudnn_rnn": cudnn_rnn_flops,
        "_cudnn_rnn_backward": _cudnn_rnn_backward,
        "mv": _mv,
        "addmv": _addmv,
        "dot": _dot,
        "vdot": _dot,
        # same arguments as the ops torch counts with these formulas: baddbmm, mm, addmm
        "addbmm": _over_shapes(baddbmm_flop),
        "_int_mm": _over_shapes(mm_flop),
        "_weight_int8pack_mm": _packed_weight_mm,
        "_weight_int4pack_mm": _packed_weight_mm,
        "_weight_int4pack_mm_for_cpu": _packed_weight_mm,
        "_addmm_activation": _over_shapes(addmm_flop),
    }
    return {getattr(aten, name): f for name, f in pairs.items() if hasattr(aten, name)}


# For FlopCounterMode(custom_mapping=...): shapes reach the formulas not marked _raw.
EXTRA_FLOP_FORMULAS = _formulas()
