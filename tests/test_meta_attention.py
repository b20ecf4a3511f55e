"""Memory and FLOPs on the meta device equal the same model's on the CPU for transformers,
whose attention the CPU runs as a fused kernel (no batch x heads x S x S scores held)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import run_stages, subject_for
from torch.nn.attention import SDPBackend, sdpa_kernel

from reporter import loader, meta_attention

pytest.importorskip("transformers")

S = 512  # long enough that S x S scores would dominate the activations

HEADER = f"""
import torch
S = {S}
"""

LLAMA = """
from transformers import LlamaConfig, LlamaForCausalLM

def build_model():
    return LlamaForCausalLM(LlamaConfig(
        hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=320))

def example_inputs():
    ids = torch.randint(0, 320, (2, S))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
"""

# The first sequence's first 100 tokens are padding: the CPU then builds a mask.
LLAMA_PADDED = LLAMA.replace(
    'return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}',
    "mask = torch.ones_like(ids)\n    mask[0, :100] = 0\n"
    '    return {"input_ids": ids, "attention_mask": mask}',
)

BERT = """
from transformers import BertConfig, BertModel

def build_model():
    return BertModel(BertConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        vocab_size=320, max_position_embeddings=S))

def example_inputs():
    ids = torch.randint(0, 320, (2, S))
    return ids, torch.ones_like(ids)  # attention_mask passed by position
"""

T5 = """
from transformers import T5Config, T5ForConditionalGeneration

def build_model():
    return T5ForConditionalGeneration(T5Config(
        d_model=64, d_ff=128, num_layers=2, num_heads=4, d_kv=16, vocab_size=320,
        decoder_start_token_id=0))

def example_inputs():
    ids = torch.randint(0, 320, (2, S))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": ids}
"""

WHISPER = """
from transformers import WhisperConfig, WhisperForConditionalGeneration

def build_model():
    return WhisperForConditionalGeneration(WhisperConfig(
        d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=16,
        vocab_size=320, max_source_positions=S, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, decoder_start_token_id=1))

def example_inputs():
    return {"input_features": torch.randn(1, 16, 2 * S),
            "decoder_input_ids": torch.randint(0, 320, (1, 64))}
"""

GPT = Path(__file__).parent.parent / "sample_models" / "gpt_decoder.py"


def gpt_at(tmp_path: Path, context: int) -> Path:
    """The sample GPT (hand-written SDPA) with a longer context."""
    text = GPT.read_text().replace("1000, 64, 128, 4, 4", f"1000, {context}, 128, 4, 4")
    assert str(context) in text
    path = tmp_path / f"gpt_{context}.py"
    path.write_text(text)
    return path


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + body)
    return path


def figures(path: Path, tmp_path: Path, device: str) -> dict[str, int | None]:
    subject = subject_for(path, tmp_path, device=device)
    sections = run_stages(subject, tmp_path, "flops", "memory", train=True)
    memory, flops = sections["memory"], sections["flops"]
    return {
        "inference peak": memory.inference_activation_peak_bytes,
        "saved for backward": memory.training.saved_activation_bytes,
        "training forward peak": memory.training.peak_forward_bytes,
        "forward FLOPs": flops.forward_total,
        "backward FLOPs": flops.backward_total,
    }


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("llama", LLAMA),
        ("llama_padded", LLAMA_PADDED),
        ("bert", BERT),
        ("t5", T5),
        ("whisper", WHISPER),
    ],
)
def test_hf_meta_equals_cpu(name: str, body: str, tmp_path: Path) -> None:
    path = write(tmp_path, name, body)
    cpu = figures(path, tmp_path, "cpu")
    meta = figures(path, tmp_path, "meta")
    assert meta == cpu


def test_sdpa_gpt_meta_equals_cpu(tmp_path: Path) -> None:
    path = gpt_at(tmp_path, S)
    cpu = figures(path, tmp_path, "cpu")
    meta = figures(path, tmp_path, "meta")
    assert meta == cpu
    # SDPA's math path, which meta took before, saves each of the 4 layers' probabilities
    # (batch 4 x 4 heads x S x S floats) where the flash kernel saves one logsumexp float
    # per query row (batch 4 x 4 heads x S); both keep q, k, v and the output.
    with sdpa_kernel(SDPBackend.MATH):
        math_path = figures(path, tmp_path, "cpu")
    probabilities = 4 * (4 * 4 * S * S) * 4
    logsumexp = 4 * (4 * 4 * S) * 4
    assert math_path["saved for backward"] - cpu["saved for backward"] == (
        probabilities - logsumexp
    )
    assert math_path["inference peak"] > 2 * cpu["inference peak"]


def test_sample_gpt_meta_equals_cpu(tmp_path: Path) -> None:
    assert figures(GPT, tmp_path, "meta") == figures(GPT, tmp_path, "cpu")


def test_hf_model_keeps_sdpa_on_meta(tmp_path: Path) -> None:
    meta = subject_for(write(tmp_path, "llama", LLAMA), tmp_path, device="meta")
    assert meta.model.config._attn_implementation == "sdpa"
    assert meta.attention_padding is False
    assert meta.notes == [meta_attention.note(False)]
    assert "without padding" not in meta.notes[0]
    padded = subject_for(write(tmp_path, "padded", LLAMA_PADDED), tmp_path, device="meta")
    assert padded.attention_padding is True


def test_hf_mask_checks_restored_after_the_passes(tmp_path: Path) -> None:
    masking = sys.modules["transformers.masking_utils"]
    before = [getattr(masking, name) for name in meta_attention.HF_MASK_SKIP_CHECKS]
    meta = subject_for(write(tmp_path, "llama", LLAMA), tmp_path, device="meta")
    run_stages(meta, tmp_path, "memory")
    assert [getattr(masking, name) for name in meta_attention.HF_MASK_SKIP_CHECKS] == before


class Forward:
    def forward(self, input_ids, attention_mask=None, labels=None):  # noqa: ANN001, ANN201
        return None


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((torch.zeros(2, 5),), {"attention_mask": torch.ones(2, 5, dtype=torch.long)}, False),
        ((torch.zeros(2, 5), torch.tensor([[1, 1, 0], [1, 1, 1]])), {}, True),
        ((torch.zeros(2, 5),), {"attention_mask": torch.ones(2, 5, dtype=torch.bool)}, False),
        ((torch.zeros(2, 5),), {"attention_mask": torch.zeros(2, 1, 5, 5)}, None),  # additive
        ((torch.zeros(2, 5),), {"attention_mask": torch.zeros(2, 5)}, None),  # float
        ((torch.zeros(2, 5),), {}, False),  # no mask: nothing padded
    ],
)
def test_attention_padding(args: tuple, kwargs: dict, expected: bool | None) -> None:
    assert meta_attention.attention_padding(Forward(), args, kwargs) is expected


def meta_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta").requires_grad_(
        t.requires_grad
    )


def sdpa_cases() -> list[tuple[str, tuple, dict]]:
    q = torch.randn(2, 8, 64, 16)
    kv = torch.randn(2, 2, 64, 16)
    bool_mask = torch.ones(2, 1, 64, 64, dtype=torch.bool)
    return [
        ("causal", (q, q, q), {"is_causal": True}),
        ("gqa", (q, kv, kv), {"is_causal": True, "enable_gqa": True}),
        ("bool mask", (q, q, q), {"attn_mask": bool_mask}),
        ("float mask", (q, q, q), {"attn_mask": torch.zeros(64, 64)}),
        ("dropout", (q, q, q), {"dropout_p": 0.1}),
        ("strided last dim", (q.transpose(-1, -2),) * 3, {}),
        ("half", (q.half(), q.half(), q.half()), {}),
        ("needs grad", (q.detach().requires_grad_(),) * 3, {"is_causal": True}),
    ]


@pytest.mark.parametrize(("label", "args", "kwargs"), sdpa_cases())
def test_cpu_choice_asks_torch(label: str, args: tuple, kwargs: dict) -> None:
    """The choice made for meta tensors is the CPU's for the same real tensors."""
    mask = kwargs.get("attn_mask")
    real = torch._fused_sdp_choice(
        *args,
        mask,
        kwargs.get("dropout_p", 0.0),
        kwargs.get("is_causal", False),
        enable_gqa=kwargs.get("enable_gqa", False),
    )
    q, k, v = (meta_like(t) for t in args)
    on_meta = meta_attention.cpu_choice(
        q,
        k,
        v,
        None if mask is None else meta_like(mask),
        kwargs.get("dropout_p", 0.0),
        kwargs.get("is_causal", False),
        None,
        kwargs.get("enable_gqa", False),
    )
    assert on_meta == SDPBackend(real)


@pytest.mark.parametrize(("label", "args", "kwargs"), sdpa_cases())
def test_sdpa_on_meta_keeps_shapes_and_grads(label: str, args: tuple, kwargs: dict) -> None:
    """Output and gradients on meta have the CPU's shapes, whichever kernel was chosen."""
    args = tuple(a.detach().requires_grad_() for a in args)
    cpu_out = torch.nn.functional.scaled_dot_product_attention(*args, **kwargs)
    cpu_out.float().sum().backward()
    meta_args = tuple(meta_like(a) for a in args)
    meta_kwargs = {k: meta_like(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    with meta_attention.on_meta(torch.device("meta")):
        out = torch.nn.functional.scaled_dot_product_attention(*meta_args, **meta_kwargs)
    assert (out.shape, out.dtype) == (cpu_out.shape, cpu_out.dtype)
    out.float().sum().backward()
    assert [a.grad.shape for a in meta_args] == [a.grad.shape for a in args]


def test_inputs_stay_shared_on_meta() -> None:
    """An input given twice, or a view of another, is one storage on meta as on the CPU."""
    ids = torch.arange(10).view(2, 5)
    moved = loader.to_device({"a": ids, "b": ids, "c": ids[:, 1:]}, torch.device("meta"))
    assert moved["a"] is moved["b"]
    view = moved["c"]
    assert view.untyped_storage()._cdata == moved["a"].untyped_storage()._cdata
    assert (view.shape, view.stride(), view.storage_offset()) == ((2, 4), (5, 1), 1)


def test_graph_recorded_alone_on_meta(tmp_path: Path, monkeypatch) -> None:
    """Recording the graph outside the shared pass answers HF's mask check too."""
    from reporter.graph.dot import DotMissing, dot_path
    from reporter.stages import graph

    try:
        dot_path()
    except DotMissing:
        pytest.skip("Graphviz is not installed")
    monkeypatch.setattr(graph, "wanted", lambda ctx: False)  # the pass does not record
    meta = subject_for(write(tmp_path, "llama", LLAMA), tmp_path, device="meta")
    section = run_stages(meta, tmp_path, "memory", "graph")["graph"]
    attention = [n for n in section.nodes if n.type == "scaled_dot_product_attention"]
    assert [n.instances for n in attention] == [2]  # one per layer, folded
