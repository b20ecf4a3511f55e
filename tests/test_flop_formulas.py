"""perfreport's FLOP formulas for ops FlopCounterMode counts as zero, each against an
independent count: torch's own count of the ordinary path, or the arithmetic by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SAMPLES
from helpers import flop_counter_total, run_stages, subject_for

GPT2_TINY = """
import torch
from transformers import GPT2Config, GPT2LMHeadModel

def build_model():
    # no attention dropout: with it, CPU attention in train mode takes the math path
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100,
                                      attn_pdrop=0.0, attn_implementation="{attn}"))

def example_inputs():
    return {{"input_ids": torch.randint(0, 100, (2, 12))}}
"""


def test_cpu_attention_counts_as_its_matrix_products(tmp_path: Path, model_file) -> None:
    """scaled_dot_product_attention on CPU runs a flash kernel FlopCounterMode has no
    formula for; eager attention is two torch.matmul calls, which it counts itself."""
    pytest.importorskip("transformers")
    sdpa = subject_for(model_file(GPT2_TINY.format(attn="sdpa"), "sdpa.py"), tmp_path)
    eager = subject_for(model_file(GPT2_TINY.format(attn="eager"), "eager.py"), tmp_path)
    fused = run_stages(sdpa, tmp_path, "flops", "memory")["flops"]
    plain = run_stages(eager, tmp_path, "flops", "memory")["flops"]
    assert fused.forward_total == plain.forward_total == flop_counter_total(eager)
    assert flop_counter_total(sdpa, ordinary_path=False) < fused.forward_total
    attn = {m.name: m.forward for m in fused.by_module if m.name.endswith(".attn")}
    assert attn == {m.name: m.forward for m in plain.by_module if m.name.endswith(".attn")}
    # Backward: the flash kernel recomputes the scores, one product more per layer than
    # the four of eager attention's two matmuls: 2 * batch * heads * seq^2 * head_dim.
    batch, heads, seq, head_dim, layers = 2, 4, 12, 16, 2
    recompute = layers * 2 * batch * heads * seq * seq * head_dim
    assert fused.backward_total - plain.backward_total == recompute


ENCODER = """
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.attend = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x):
        y = self.encoder(x)
        return self.attend(y, y, y)[0]


def build_model():
    return Encoder().eval()


def example_inputs():
    return torch.randn(3, 10, 64)
"""


def test_fused_attention_fast_path_counts_its_products(tmp_path: Path, model_file) -> None:
    """In eval without gradients nn.MultiheadAttention runs one fused op, which
    FlopCounterMode counts as zero; perfreport counts what the ordinary path computes,
    which FlopCounterMode counts itself."""
    subject = subject_for(model_file(ENCODER), tmp_path)
    flops = run_stages(subject, tmp_path, "flops")["flops"]
    assert "aten._native_multi_head_attention" in {o.op for o in flops.by_op}
    assert flops.forward_total == flop_counter_total(subject)  # the ordinary path


def test_fused_encoder_layer_counts_its_products() -> None:
    """nn.TransformerEncoderLayer's fast path (taken when no hook watches the layer, as in
    production) against torch's count of the ordinary path; padded sequences run nested,
    real tokens only, worked out by hand."""
    from torch import nn
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from reporter.flop_formulas import EXTRA_FLOP_FORMULAS

    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()
    x = torch.randn(3, 10, 64)

    def counted(mask: torch.Tensor | None, extra: dict) -> tuple[int, set[str]]:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=extra) as c:
            encoder(x, src_key_padding_mask=mask)
        return c.get_total_flops(), {str(op) for op in c.get_flop_counts()["Global"]}

    fused, ops = counted(None, EXTRA_FLOP_FORMULAS)
    assert ops == {"aten._transformer_encoder_layer_fwd"}
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            ordinary, ops = counted(None, {})
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    assert "aten._transformer_encoder_layer_fwd" not in ops
    assert fused == ordinary
    # Per layer and sequence of n tokens (embed 64, feed-forward 128): projections and
    # output 8 * 64^2 * n, attention 4 * 64 * n^2, feed-forward 4 * 64 * 128 * n.
    lengths = (7, 4, 10)
    mask = torch.arange(10) >= torch.tensor(lengths)[:, None]
    nested, ops = counted(mask, EXTRA_FLOP_FORMULAS)
    assert ops == {"aten._transformer_encoder_layer_fwd"}
    per_layer = sum(8 * 64**2 * n + 4 * 64 * n * n + 4 * 64 * 128 * n for n in lengths)
    assert nested == 2 * per_layer


def test_onednn_lstm_counts_like_the_ordinary_path(tmp_path: Path) -> None:
    """nn.LSTM on CPU runs each layer as one oneDNN op that FlopCounterMode counts as zero.
    By hand: every token (steps x batch) times both weight matrices, per layer; backward
    computes gradients of input, hidden state and both weights, twice the forward."""
    subject = subject_for(SAMPLES / "lstm_classifier.py", tmp_path)
    flops = run_stages(subject, tmp_path, "flops", "memory")["flops"]
    assert "aten.mkldnn_rnn_layer" in {o.op for o in flops.by_op}
    assert flops.forward_total == flop_counter_total(subject)  # the ordinary path
    lstm = next(m for m in subject.model.modules() if isinstance(m, torch.nn.LSTM))
    tokens = subject.kwargs["tokens"].numel()  # batch x steps
    # both directions of both layers: weight_ih_l0, weight_hh_l0_reverse, ...
    weights = sum(p.numel() for n, p in lstm.named_parameters() if n.startswith("weight_"))
    by_module = {m.name: m for m in flops.by_module}
    name = next(n for n, m in subject.model.named_modules() if m is lstm)
    assert by_module[name].forward == 2 * tokens * weights
    assert by_module[name].backward == 2 * by_module[name].forward


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
def test_cudnn_rnn_formula_matches_the_ordinary_path_on_cpu(cls: type) -> None:
    """The cuDNN RNN op runs only on a GPU; its formula is checked against torch's count of
    the same module's ordinary path on CPU, for the shapes cuDNN would receive."""
    from torch.utils.flop_counter import FlopCounterMode

    from reporter.flop_formulas import cudnn_rnn_flops

    rnn = cls(16, 32, num_layers=2, batch_first=True, bidirectional=True)
    x = torch.randn(3, 7, 16)
    ordinary = torch.backends.mkldnn.flags(enabled=False)
    with ordinary, torch.no_grad(), FlopCounterMode(display=False) as counter:
        rnn(x)
    weights = [tuple(w.shape) for w in rnn._flat_weights]
    assert cudnn_rnn_flops(tuple(x.shape), weights) == counter.get_total_flops()


def test_vector_products_counted_by_hand() -> None:
    """x @ v on a vector runs mv (2 x rows x cols), v @ v runs dot (2 x n); addbmm sums a
    batch of products (2 x batch x n x m x p)."""
    from torch.utils.flop_counter import FlopCounterMode

    from reporter.flop_formulas import EXTRA_FLOP_FORMULAS

    mat, vec = torch.randn(8, 16), torch.randn(16)
    b1, b2 = torch.randn(3, 8, 16), torch.randn(3, 16, 4)
    cases = [
        (lambda: mat @ vec, 2 * 8 * 16),
        (lambda: torch.addmv(torch.zeros(8), mat, vec), 2 * 8 * 16),
        (lambda: vec @ vec, 2 * 16),
        (lambda: torch.vdot(vec, vec), 2 * 16),
        (lambda: torch.addbmm(torch.zeros(8, 4), b1, b2), 2 * 3 * 8 * 16 * 4),
        (lambda: b1 @ vec, 2 * 3 * 8 * 16),  # a batch of rows times one vector: one mv
    ]
    for run, expected in cases:
        with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
            run()
        assert counter.get_total_flops() == expected


def test_attention_formulas_equal_torchs_for_the_cuda_flash_kernel() -> None:
    """Written out for torch versions whose helpers reject grouped-query shapes; torch
    2.13's helpers accept them, so the two agree on every shape, GQA included."""
    import random

    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    from reporter.flop_formulas import EXTRA_FLOP_FORMULAS

    forward = EXTRA_FLOP_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu]
    backward = EXTRA_FLOP_FORMULAS[
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward
    ]
    rng = random.Random(0)
    for _ in range(200):
        b, hq, sq, sk, d, dv = (rng.randint(1, 9) for _ in range(6))
        hkv = rng.choice([h for h in range(1, hq + 1) if hq % h == 0])
        q, k, v, out = (b, hq, sq, d), (b, hkv, sk, d), (b, hkv, sk, dv), (b, hq, sq, dv)
        assert forward(q, k, v) == sdpa_flop_count(q, k, v)
        assert backward(out, q, k, v) == sdpa_backward_flop_count(out, q, k, v)


def test_quantized_and_fused_products_counted_by_hand() -> None:
    """2 x m x k x n for int8 products, weight-only int8/int4 products (n from the output:
    the int4 weight is packed) and a Linear fused with its activation."""
    from torch.utils.flop_counter import FlopCounterMode

    from reporter.flop_formulas import EXTRA_FLOP_FORMULAS

    aten = torch.ops.aten
    m, k, n = 32, 64, 16
    int8 = torch.randint(-8, 8, (m, k), dtype=torch.int8)
    bf16 = torch.randn(m, k, dtype=torch.bfloat16)
    packed = aten._convert_weight_to_int4pack_for_cpu(
        torch.randint(0, 16, (n, k), dtype=torch.int32), 1
    )
    cases = [
        lambda: torch._int_mm(int8, torch.randint(-8, 8, (k, n), dtype=torch.int8)),
        lambda: aten._weight_int8pack_mm(
            bf16, torch.randint(-8, 8, (n, k), dtype=torch.int8), torch.ones(n, dtype=bf16.dtype)
        ),
        lambda: aten._weight_int4pack_mm_for_cpu(
            bf16, packed, 32, torch.ones(k // 32, n, 2, dtype=torch.bfloat16)
        ),
        lambda: aten._addmm_activation(torch.zeros(n), torch.randn(m, k), torch.randn(k, n)),
    ]
    for run in cases:
        with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
            out = run()
        assert tuple(out.shape) == (m, n)
        assert counter.get_total_flops() == 2 * m * k * n
