"""Backward FLOPs: the convolution backward formula, the per-module attribution of the
backward, and the causal attention figures, each against an independent count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from flop_models import BASIC_BLOCK, SEQUENTIAL, VIT_BLOCK
from helpers import run_stages, subject_for
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reporter.flop_formulas import EXTRA_FLOP_FORMULAS, FlopCounter
from reporter.stages.passes import train_mode, training_loss

# --- convolution backward -------------------------------------------------------------

CONVS = [
    # (conv, input shape)
    (nn.Conv2d(96, 96, 3, padding=1, groups=96), (1, 96, 56, 56)),  # depthwise
    (nn.Conv2d(32, 64, 3, stride=2, padding=1, groups=4), (2, 32, 15, 15)),
    (nn.Conv1d(12, 24, 5, dilation=2, groups=3), (3, 12, 40)),
    (nn.Conv3d(8, 8, 3, padding=1, groups=8), (1, 8, 6, 6, 6)),
    (nn.ConvTranspose2d(16, 32, 4, stride=2, padding=1, groups=4), (2, 16, 7, 7)),
    (nn.ConvTranspose1d(8, 8, 3, stride=3, groups=8), (2, 8, 10)),
]


def _backward_flops(run: Any, mapping: dict[Any, Any]) -> int:
    """FLOPs of the backward of run()'s output only."""
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out = run()
        before = counter.get_total_flops()
        out.sum().backward()
    return counter.get_total_flops() - before


def _macs_by_hand(conv: nn.Module, x_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Multiply-adds of the forward: every output element of a group takes in_channels /
    groups x kernel products (a transposed conv: every input element feeds out_channels /
    groups x kernel outputs)."""
    kernel = 1
    for k in conv.kernel_size:
        kernel *= k
    if conv.transposed:
        per_input = conv.out_channels // conv.groups * kernel
        return torch.Size(x_shape).numel() * per_input
    return torch.Size(out_shape).numel() * (conv.in_channels // conv.groups) * kernel


@pytest.mark.parametrize(("conv", "shape"), CONVS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("needs", ["both", "weight", "input"])
def test_conv_backward_counts_each_gradient_once(conv: nn.Module, shape: Any, needs: str) -> None:
    """Each gradient computed is one forward's multiply-adds (hand count); grouped, a
    conv is `groups` independent convs, whose backward torch counts right: the sums agree."""
    x = torch.randn(shape, requires_grad=needs in ("both", "input"))
    conv.weight.requires_grad_(needs in ("both", "weight"))
    conv.bias.requires_grad_(needs in ("both", "weight"))
    out_shape = tuple(conv(x).shape)
    ours = _backward_flops(lambda: conv(x), EXTRA_FLOP_FORMULAS)
    gradients = 2 if needs == "both" else 1
    assert ours == gradients * 2 * _macs_by_hand(conv, shape, out_shape)
    # the same arithmetic as groups separate convolutions with groups=1
    g = conv.groups
    parts = [
        type(conv)(
            conv.in_channels // g,
            conv.out_channels // g,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
        )  # fmt: skip
        for _ in range(g)
    ]
    for part in parts:
        part.weight.requires_grad_(conv.weight.requires_grad)
        part.bias.requires_grad_(conv.bias.requires_grad)
    xs = [c.detach().requires_grad_(x.requires_grad) for c in x.chunk(g, dim=1)]
    separate = sum(
        _backward_flops(lambda p=p, c=c: p(c), {}) for p, c in zip(parts, xs, strict=True)
    )
    assert ours == separate
    if g > 1 and needs != "input":  # torch's own formula counts the weight gradient g times
        assert _backward_flops(lambda: conv(x), {}) > ours


def test_conv_backward_equals_torchs_formula_without_groups() -> None:
    for conv, shape in [
        (nn.Conv2d(8, 16, 3, stride=2, padding=1), (2, 8, 9, 9)),
        (nn.ConvTranspose2d(8, 4, 3, stride=2), (2, 8, 5, 5)),
        (nn.Conv1d(4, 6, 3, dilation=3), (1, 4, 30)),
    ]:
        x = torch.randn(shape, requires_grad=True)
        assert _backward_flops(lambda c=conv, x=x: c(x), EXTRA_FLOP_FORMULAS) == _backward_flops(
            lambda c=conv, x=x: c(x), {}
        )


def test_depthwise_example_forward_and_backward() -> None:
    """Conv2d(96, 96, 3, groups=96) on 1x96x56x56: forward 2 x 56^2 x 96 x 9 = 5.42 M,
    backward (input and weight gradients) twice that."""
    conv = nn.Conv2d(96, 96, 3, padding=1, groups=96)
    x = torch.randn(1, 96, 56, 56, requires_grad=True)
    with FlopCounter() as counter:
        out = conv(x)
        forward = counter.get_total_flops()
        out.sum().backward()
    assert forward == 2 * 56 * 56 * 96 * 9 == 5_419_008
    assert counter.get_total_flops() - forward == 2 * forward


# --- backward by module ---------------------------------------------------------------


def _tensor_copy(value: Any) -> Any:
    """The tensors in an op's arguments, detached, each keeping whether it needs grad."""
    if isinstance(value, torch.Tensor) and value.requires_grad:
        # not a leaf, as in the model, so that in-place ops (ReLU(inplace=True)) may run
        return value.detach().requires_grad_().clone()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_tensor_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _tensor_copy(v) for k, v in value.items()}
    return value


def _outputs(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _outputs(v)]
    return []


def isolated_backward(model: nn.Module, call: Any, loss_fn: Any) -> dict[str, int]:
    """Each module's backward counted alone: its inputs from a real training step (with
    their requires_grad), its forward run again under a fresh FlopCounterMode, and a
    gradient sent back through each output that got one in the real step."""
    calls: list[tuple[str, Any, Any, list[bool]]] = []  # every call, a shared module's too
    handles = []
    for name, module in model.named_modules():

        def before(m: Any, args: Any, kwargs: Any, name: str = name) -> None:
            calls.append((name, _tensor_copy(args), _tensor_copy(kwargs), []))

        def after(m: Any, args: Any, kwargs: Any, out: Any, name: str = name) -> None:
            reached = next(c for c in reversed(calls) if c[0] == name)[3]
            for i, t in enumerate(_outputs(out)):
                reached.append(False)
                if t.requires_grad:
                    t.register_hook(lambda g, i=i: reached.__setitem__(i, True))

        handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(module.register_forward_hook(after, with_kwargs=True))
    try:
        loss_fn(call()).backward()
    finally:
        for h in handles:
            h.remove()
    counts: dict[str, int] = {}
    modules = dict(model.named_modules())
    for name, args, kwargs, reached in calls:
        with FlopCounter() as counter:
            outs = _outputs(modules[name](*args, **kwargs))
            before = counter.get_total_flops()
            used = [t for t, r in zip(outs, reached, strict=True) if r]
            if used:
                torch.autograd.backward(used, [torch.ones_like(t) for t in used])
        counts[name] = counts.get(name, 0) + counter.get_total_flops() - before
    model.zero_grad(set_to_none=True)
    return counts


@pytest.mark.parametrize("source", [SEQUENTIAL, BASIC_BLOCK, VIT_BLOCK], ids=["seq", "res", "vit"])
def test_backward_by_module_matches_each_module_run_alone(
    source: str, tmp_path: Path, model_file
) -> None:
    subject = subject_for(model_file(source), tmp_path)
    flops = run_stages(subject, tmp_path, "flops", train=True)["flops"]
    with train_mode(subject.model):
        alone = isolated_backward(
            subject.model, subject.call, lambda out: training_loss(subject, out)
        )
    reported = {m.name: m.backward or 0 for m in flops.by_module}
    assert {n: reported.get(n, 0) for n in alone} == alone
    assert reported[""] == flops.backward_total > 0  # the root holds the whole backward


def test_backward_by_module_by_hand(tmp_path: Path, model_file) -> None:
    """Sequential: the first Linear's input needs no gradient (weight gradient only), the
    Dropout computes nothing. Residual net: the stem's input needs none (weight gradient
    only: one forward); the block's convs, downsample included, compute both gradients.
    FlopCounterMode's own module tracking gave the downsample the whole block's backward."""
    subject = subject_for(model_file(SEQUENTIAL, "seq.py"), tmp_path)
    by = {m.name: m for m in run_stages(subject, tmp_path, "flops", train=True)["flops"].by_module}
    assert by["0"].backward == 2 * 4 * 16 * 32
    assert "2" not in by or by["2"].backward == 0  # the Dropout: a row only with FLOPs
    assert by["3"].backward == 2 * (2 * 4 * 32 * 8)
    assert by[""].backward == by["0"].backward + by["3"].backward

    subject = subject_for(model_file(BASIC_BLOCK, "res.py"), tmp_path)
    flops = run_stages(subject, tmp_path, "flops", train=True)["flops"]
    by = {m.name: m for m in flops.by_module}
    stem = 2 * 2 * 16 * 16 * 16 * 3 * 9
    conv1 = 2 * 2 * 32 * 8 * 8 * 16 * 9
    conv2 = 2 * 2 * 32 * 8 * 8 * 32 * 9
    down = 2 * 2 * 32 * 8 * 8 * 16
    assert (by["stem"].forward, by["stem"].backward) == (stem, stem)
    assert (by["block.conv1"].forward, by["block.conv1"].backward) == (conv1, 2 * conv1)
    assert (by["block.conv2"].forward, by["block.conv2"].backward) == (conv2, 2 * conv2)
    assert by["block.downsample"].backward == by["block.downsample.0"].backward == 2 * down
    assert by["block"].backward == 2 * (conv1 + conv2 + down)
    assert flops.backward_total == by[""].backward == stem + 2 * (conv1 + conv2 + down)


# --- causal attention -----------------------------------------------------------------


def _sdpa_tally(**kwargs: Any) -> Any:
    batch, heads, q_len, kv_len, dim = 2, 4, 10, 10, 16
    q = torch.randn(batch, heads, q_len, dim)
    k, v = torch.randn(batch, heads, kv_len, dim), torch.randn(batch, heads, kv_len, dim)
    with FlopCounter() as counter:
        torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)
    return counter


@pytest.mark.parametrize(("q_len", "kv_len"), [(10, 10), (6, 10), (10, 4)])
def test_causal_attention_counts_the_lower_triangle(q_len: int, kv_len: int) -> None:
    """is_causal: query i sees keys 0..i (top-left, as torch documents); both products
    (scores, weighted sum) shrink to those pairs. Counted by listing the pairs."""
    batch, heads, dim = 2, 4, 16
    q = torch.randn(batch, heads, q_len, dim, requires_grad=True)
    k = torch.randn(batch, heads, kv_len, dim, requires_grad=True)
    v = torch.randn(batch, heads, kv_len, dim, requires_grad=True)
    with FlopCounter() as counter:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        forward, kept_forward = counter.get_total_flops(), counter.masked.kept
        out.sum().backward()
    pairs = sum(1 for i in range(q_len) for j in range(kv_len) if j <= i)
    assert forward == 2 * batch * heads * q_len * kv_len * 2 * dim  # all pairs, as torch
    assert kept_forward == 2 * batch * heads * pairs * 2 * dim
    backward = counter.get_total_flops() - forward
    assert counter.masked.kept - kept_forward == backward * pairs // (q_len * kv_len)
    assert counter.masked.kept - kept_forward == 2 * batch * heads * pairs * 5 * dim


def test_attention_masks_count_the_pairs_they_let_through() -> None:
    """A lower-triangular boolean or additive (dtype's lowest value, as Hugging Face
    writes it) mask counts as is_causal; a padding mask counts each sequence's keys."""
    full = 2 * 2 * 4 * 10 * 10 * 2 * 16
    causal = _sdpa_tally(is_causal=True).masked.kept
    tril = torch.ones(10, 10, dtype=torch.bool).tril()
    additive = torch.zeros(10, 10).masked_fill(~tril, torch.finfo(torch.float32).min)
    assert _sdpa_tally(attn_mask=tril).masked.kept == causal
    assert _sdpa_tally(attn_mask=additive).masked.kept == causal
    assert _sdpa_tally(attn_mask=additive.masked_fill(~tril, float("-inf"))).masked.kept == causal
    lengths = torch.tensor([7, 3])
    padding = (torch.arange(10) < lengths[:, None])[:, None, None, :]  # (batch, 1, 1, keys)
    kept = _sdpa_tally(attn_mask=padding).masked.kept
    assert kept == sum(2 * 4 * 10 * n * 2 * 16 for n in (7, 3))
    plain = _sdpa_tally()
    assert plain.get_total_flops() == full and plain.masked.counted == 0


def test_gqa_decoder_causal_figures_by_hand(tmp_path: Path, model_file) -> None:
    """Llama with 4 query heads sharing 2 key/value heads, run causal through SDPA: every
    linear layer's backward is twice its forward (every input needs a gradient), the
    attention's 5 products of the flash kernel (GQA changes no product's size), and the
    causal figures count 78 of the 144 query-key pairs of 12 tokens."""
    pytest.importorskip("transformers")
    from flop_models import LLAMA_GQA

    subject = subject_for(model_file(LLAMA_GQA, "llama.py"), tmp_path)
    flops = run_stages(subject, tmp_path, "flops", train=True)["flops"]
    batch, seq, hidden, heads, head_dim, layers, vocab, ffn = 2, 12, 64, 4, 16, 2, 128, 128
    tokens = batch * seq
    kv = 2 * head_dim  # key and value projections' width
    linear = layers * 2 * tokens * hidden * (hidden + 2 * kv + hidden + 3 * ffn)
    linear += 2 * tokens * hidden * vocab  # lm_head
    attention = layers * 2 * batch * heads * seq * seq * 2 * head_dim
    attention_bwd = layers * 2 * batch * heads * seq * seq * 5 * head_dim
    assert flops.forward_total == linear + attention
    assert flops.backward_total == 2 * linear + attention_bwd
    pairs = seq * (seq + 1) // 2
    assert flops.forward_causal_total == linear + attention * pairs // (seq * seq)
    assert flops.backward_causal_total == 2 * linear + attention_bwd * pairs // (seq * seq)


CAUSAL = """
import torch
from torch import nn

class CausalAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)

    def forward(self, x):
        q, k, v = self.qkv(x).view(2, 8, 3, 2, 16).permute(2, 0, 3, 1, 4)
        return nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

def build_model():
    return CausalAttention()

def example_inputs():
    return torch.randn(2, 8, 32)
"""


@pytest.mark.parametrize("causal", [True, False])
def test_flops_section_says_attention_is_counted_at_all_pairs(
    causal: bool, tmp_path: Path, model_file
) -> None:
    from helpers import report_for

    from reporter.render.format import exact
    from reporter.render.html import render_html
    from reporter.render.markdown import render_markdown

    source = CAUSAL if causal else CAUSAL.replace("is_causal=True", "is_causal=False")
    report = report_for(model_file(source), tmp_path, "flops", train=True)
    flops = report.flops
    linear, attention = 2 * 16 * 32 * 96, 2 * 2 * 2 * 8 * 8 * 2 * 16
    assert flops.forward_total == linear + attention
    html, markdown = render_html(report), render_markdown(report)
    for text in (html, markdown):
        assert "query-key pair" in text and "S × S" in text
    assert "S x S" in flops.method
    if causal:
        assert flops.forward_causal_total == linear + attention * 36 // 64  # 8 tokens: 36 pairs
        assert exact(flops.forward_causal_total) in html
        assert flops.causal_ops == [
            "aten._scaled_dot_product_flash_attention_for_cpu",
            "aten._scaled_dot_product_flash_attention_for_cpu_backward",
        ]
    else:
        assert flops.forward_causal_total is None and flops.backward_causal_total is None
        assert "attended pairs only" not in html


# --- RNN backward ---------------------------------------------------------------------


def test_cudnn_rnn_backward_counts_the_weight_gradient_only_when_asked() -> None:
    """cuDNN's data gradient (one forward) always runs; its weight gradient (one forward
    more) only with output_mask[3]: frozen weights skip it."""
    from reporter.flop_formulas import cudnn_rnn_backward_flops, cudnn_rnn_flops

    x, weights = (7, 3, 16), [(128, 16), (128, 32), (128,), (128,)]
    forward = cudnn_rnn_flops(x, weights)
    assert forward == 2 * 21 * (128 * 16 + 128 * 32)
    rest = [None] * 19  # weight_stride0 ... reserve: not read
    assert cudnn_rnn_backward_flops(x, weights, *rest, [True, True, True, True]) == 2 * forward
    assert cudnn_rnn_backward_flops(x, weights, *rest, [True, True, True, False]) == forward


def _conv_flops(batch: int, positions: int, out_channels: int, in_per_group: int, k: int) -> int:
    return 2 * batch * positions * out_channels * in_per_group * k


@pytest.mark.parametrize("family", ["depthwise", "inverted_residual"])
def test_depthwise_families_by_hand(family: str, tmp_path: Path, model_file) -> None:
    """MobileNet's depthwise-separable block and the MobileNetV2/EfficientNet inverted
    residual: the first conv's input needs no gradient (weight gradient only: one
    forward), every later conv computes both gradients (twice its forward)."""
    from flop_models import DEPTHWISE, INVERTED_RESIDUAL

    if family == "depthwise":
        source, depthwise = DEPTHWISE, "1"
        first = _conv_flops(2, 28 * 28, 32, 3, 9)
        later = [_conv_flops(2, 28 * 28, 32, 1, 9), _conv_flops(2, 28 * 28, 64, 32, 1)]
    else:
        source, depthwise = INVERTED_RESIDUAL, "depthwise.0"
        first = _conv_flops(2, 14 * 14, 24, 3, 9)
        later = [
            _conv_flops(2, 14 * 14, 144, 1, 9),  # the depthwise conv first
            _conv_flops(2, 14 * 14, 144, 24, 1),
            _conv_flops(2, 14 * 14, 24, 144, 1),
        ]
    subject = subject_for(model_file(source), tmp_path)
    flops = run_stages(subject, tmp_path, "flops", train=True)["flops"]
    assert flops.forward_total == first + sum(later)
    assert flops.backward_total == first + 2 * sum(later)
    by = {m.name: m for m in flops.by_module}
    assert (by[depthwise].forward, by[depthwise].backward) == (later[0], 2 * later[0])
