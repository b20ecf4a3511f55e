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
  ones) times every weight matrix, of every layer and direction. The oneDNN backward
  computes the gradients of the input, the hidden state and the weights, always: twice
  the forward. The cuDNN backward computes the weights' only when they need one (its
  output_mask): once or twice the forward. (The ordinary path skips gradients nothing
  needs, such as the initial hidden state's.)
- Convolution backward replaces torch's formula, which multiplies a grouped
  convolution's weight gradient by its groups (a depthwise convolution's backward came
  out 1 + channels times the forward instead of twice): each gradient computed counts
  one forward.
- The SDPA kernels' formulas are wrapped to tally, beside the count over all query-key
  pairs, the count over the pairs that is_causal or the mask lets through (below).
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
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, addmm_flop, baddbmm_flop, mm_flop

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


def cudnn_rnn_backward_flops(input: Any, weights: Any, *args: Any, **kwargs: Any) -> int:
    """torch runs cuDNN's data gradient (input and hidden states, through every weight
    matrix: one forward) always, and its weight gradient (one forward more) only when
    output_mask[3] says the weights need one (frozen weights do not)."""
    output_mask = kwargs.get("output_mask", args[-1] if args else (True,) * 4)
    return cudnn_rnn_flops(input, weights) * (1 + bool(output_mask[3]))


def conv_backward_flops(
    grad_out: Any,
    input: Any,
    weight: Any,
    bias_sizes: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    output_padding: Any,
    groups: int,
    output_mask: Any,
    **kwargs: Any,
) -> int:
    """The input gradient and the weight gradient, each where output_mask asks for it
    (autograd leaves out the input's when the input needs none, the weight's when the
    weight does not require grad). Each pairs every weight element with every output
    position of the forward (input position, transposed) once, as the forward does: one
    forward's count apiece. The weight's shape, (out, in / groups, *kernel), already holds
    the grouping; torch's formula multiplies the weight gradient by groups again, which
    overstates a depthwise convolution's backward by its channel count."""
    positions = math.prod((input if transposed else grad_out)[2:])
    forward = 2 * input[0] * positions * math.prod(weight)
    return forward * (bool(output_mask[0]) + bool(output_mask[1]))


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
        "_cudnn_rnn_backward": cudnn_rnn_backward_flops,
        "convolution_backward": conv_backward_flops,
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


# Causal and masked attention. Every attention formula, torch's and these, counts all
# query-key pairs (S x S), whatever is_causal or the mask says: the work a kernel does
# that computes the whole score matrix. A causal kernel needs only the pairs it lets
# through (about half). The counter below keeps both, for the SDPA kernels; eager
# attention (matmul, mask, softmax, matmul) is ordinary products and stays at S x S.


@dataclass
class MaskedAttention:
    """Attention FLOPs of SDPA kernels run causal or with a mask: as counted (all pairs)
    and over the pairs the causal rule or the mask lets through."""

    counted: int = 0
    kept: int = 0
    ops: set[str] = field(default_factory=set)

    @property
    def saved(self) -> int:
        return self.counted - self.kept


def _causal_pairs(q_len: int, kv_len: int) -> int:
    """Pairs of query i and key j <= i (is_causal: the top-left triangle, as torch's
    SDPA documents for a non-square mask)."""
    if q_len <= kv_len:
        return q_len * (q_len + 1) // 2
    return kv_len * (kv_len + 1) // 2 + (q_len - kv_len) * kv_len


def _mask_pairs(mask: torch.Tensor, shape: tuple[int, int, int, int]) -> int | None:
    """Pairs a boolean mask (True: attend) or an additive one (-inf or the dtype's
    lowest value: masked, as Hugging Face writes it) lets through, broadcast to
    (batch, heads, q_len, kv_len); None when the mask has no values to read (meta)."""
    if mask.device.type == "meta" or mask.is_nested or mask.dim() > 4:
        return None
    with torch.no_grad():
        allowed = mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min
        kept = int(allowed.sum())
    sizes = (1,) * (4 - mask.dim()) + tuple(mask.shape)
    repeats = math.prod(n for n, m in zip(shape, sizes, strict=True) if m == 1)
    return kept * repeats


def attention_pairs(packet: Any, args: Any, kwargs: Any) -> tuple[int, int] | None:
    """(pairs the causal rule or mask lets through, all pairs) of one SDPA kernel call
    ((batch, heads, length, dim) tensors); None when it attends to every pair or the
    mask cannot be read."""
    names = [a.name for a in packet.default._schema.arguments]
    bound = {**dict(zip(names, args, strict=False)), **kwargs}
    query, key = bound.get("query"), bound.get("key")
    if not all(isinstance(t, torch.Tensor) and not t.is_nested for t in (query, key)):
        return None
    if query.dim() != 4:
        return None
    batch, heads, q_len, _ = query.shape
    kv_len = key.shape[-2]
    total = batch * heads * q_len * kv_len
    if bound.get("is_causal"):
        return batch * heads * _causal_pairs(q_len, kv_len), total
    mask = bound.get("attn_mask", bound.get("attn_bias"))
    if isinstance(mask, torch.Tensor):
        kept = _mask_pairs(mask, (batch, heads, q_len, kv_len))
        return (kept, total) if kept is not None else None
    return None


def _sdpa_kernels(formulas: dict[Any, Any]) -> dict[Any, Any]:
    """The SDPA kernels among the formulas: (batch, heads, length, dim) tensors and an
    is_causal argument."""
    out = {}
    for packet, formula in formulas.items():
        schema = getattr(getattr(packet, "default", None), "_schema", None)
        names = {a.name for a in schema.arguments} if schema is not None else set()
        if str(packet).startswith("aten._scaled_dot_product") and "is_causal" in names:
            out[packet] = formula
    return out


def masked_attention_formulas(tally: MaskedAttention) -> dict[Any, Any]:
    """The SDPA kernels' formulas (torch's and these), each also adding to `tally` its
    count and its count over the pairs let through. For FlopCounterMode(custom_mapping=):
    they take the op's tensors."""
    from torch.utils.flop_counter import flop_registry, shape_wrapper

    kernels = _sdpa_kernels({**flop_registry, **EXTRA_FLOP_FORMULAS})
    out = {}
    for packet, formula in kernels.items():
        on_tensors = formula if packet in flop_registry else shape_wrapper(formula)
        out[packet] = _tallied(packet, on_tensors, tally)
    return out


def _tallied(packet: Any, formula: Callable[..., int], tally: MaskedAttention) -> Any:
    def counted(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        flops = formula(*args, out_val=out_val, **kwargs)
        pairs = attention_pairs(packet, args, kwargs)
        if pairs is not None and pairs[1]:
            kept, total = pairs
            tally.counted += flops
            tally.kept += flops * kept // total
            tally.ops.add(str(packet))
        return flops

    counted._get_raw = True  # type: ignore[attr-defined]  # read by FlopCounterMode
    return counted


class FlopCounter(FlopCounterMode):
    """FlopCounterMode with perfreport's formulas for the ops it lacks; the SDPA kernels
    run causal or with a mask are also tallied in ``masked``."""

    def __init__(self) -> None:
        self.masked = MaskedAttention()
        formulas = {**EXTRA_FLOP_FORMULAS, **masked_attention_formulas(self.masked)}
        super().__init__(display=False, custom_mapping=formulas)
