"""Static analysis on the meta device matches the same model built for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import flop_counter_total, run_stages, subject_for, unique_numel

from reporter import loader
from reporter.model_info import count_parameters

pytest.importorskip("transformers")

LLAMA = """
import torch
from transformers import LlamaConfig, LlamaForCausalLM

def build_model():
    return LlamaForCausalLM(LlamaConfig(
        hidden_size=64, intermediate_size=176, num_hidden_layers=3, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=320, attn_implementation="eager"))

def example_inputs():
    ids = torch.randint(0, 320, (2, 24))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
"""


def llama_parameters(h: int, i: int, n: int, heads: int, kv: int, vocab: int) -> int:
    """Llama's parameter count worked out by hand (untied embedding and head)."""
    head_dim = h // heads
    attention = h * h * 2 + 2 * h * kv * head_dim  # q, o and the smaller k, v
    mlp = 3 * h * i
    norms = 2 * h
    return 2 * vocab * h + n * (attention + mlp + norms) + h


@pytest.fixture
def llama_file(tmp_path: Path) -> Path:
    path = tmp_path / "llama.py"
    path.write_text(LLAMA)
    return path


def test_meta_matches_real(llama_file: Path, tmp_path: Path) -> None:
    real = subject_for(llama_file, tmp_path)
    meta = subject_for(llama_file, tmp_path, device="meta")
    assert next(meta.model.parameters()).device.type == "meta"
    expected = llama_parameters(64, 176, 3, 8, 2, 320)
    assert count_parameters(meta.model).total == count_parameters(real.model).total == expected
    assert unique_numel(real.model) == expected
    real_sections = run_stages(real, tmp_path, "summary", "flops", "memory")
    meta_sections = run_stages(meta, tmp_path, "summary", "flops", "memory", train=True)
    assert meta_sections["flops"].forward_total == real_sections["flops"].forward_total
    assert meta_sections["flops"].forward_total == flop_counter_total(real)
    assert meta_sections["flops"].backward_total == real_sections["flops"].backward_total
    for field in (
        "parameter_bytes",
        "input_bytes",
        "output_bytes",
        "inference_activation_peak_bytes",
    ):
        assert getattr(meta_sections["memory"], field) == getattr(real_sections["memory"], field), (
            field
        )
    assert meta_sections["memory"].training.saved_activation_bytes == (
        real_sections["memory"].training.saved_activation_bytes
    )
    real_rows = [(r.name, r.output_shape, r.params) for r in real_sections["summary"].layers]
    meta_rows = [(r.name, r.output_shape, r.params) for r in meta_sections["summary"].layers]
    assert meta_rows == real_rows


def test_meta_skips_backward_unless_asked(llama_file: Path, tmp_path: Path) -> None:
    meta = subject_for(llama_file, tmp_path, device="meta")
    sections = run_stages(meta, tmp_path, "flops", "memory")
    assert sections["flops"].backward_total is None
    assert all(m.backward is None for m in sections["flops"].by_module)
    assert "--train" in sections["memory"].method


def test_meta_in_bf16_halves_weights(llama_file: Path, tmp_path: Path) -> None:
    meta = subject_for(llama_file, tmp_path, device="meta", dtype="bf16")
    memory = run_stages(meta, tmp_path, "memory")["memory"]
    assert memory.parameter_bytes == 2 * llama_parameters(64, 176, 3, 8, 2, 320)
    fits = {row.scenario: row for row in memory.fits}
    assert fits["Training, AdamW"].per_device["2"] == -(-fits["Training, AdamW"].bytes // 2)


def test_auto_meta_when_weights_do_not_fit(llama_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(loader, "available_memory", lambda device: 1024)
    subject = subject_for(llama_file, tmp_path)
    assert subject.device.type == "meta"
    assert "meta device" in subject.notes[0] and "--no-auto-meta" in subject.notes[0]
    forbidden = subject_for(llama_file, tmp_path, auto_meta=False)
    assert forbidden.device.type == "cpu"


def test_meta_report_skips_execution_stages(cli, llama_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli(llama_file, "--device", "meta", "-o", out, "--only", "summary,flops,memory,timing")
    assert result.code == 0, result.err
    data = json.loads((out / "report.json").read_text())
    assert data["stages"]["timing"]["status"] == "skipped"
    assert "meta device" in data["stages"]["timing"]["reason"]
    assert data["model"]["parameters"]["total"] == llama_parameters(64, 176, 3, 8, 2, 320)


def test_what_fits_table_by_hand(llama_file: Path, tmp_path: Path) -> None:
    """Each scenario worked out from the parameter count: fp32 weights (4 bytes), one
    gradient, AdamW 2 states or SGD momentum 1, bf16 autocast halving activations."""
    meta = subject_for(llama_file, tmp_path, device="meta")
    memory = run_stages(meta, tmp_path, "memory")["memory"]
    weights = 4 * llama_parameters(64, 176, 3, 8, 2, 320)
    inputs = 2 * (2 * 24) * 8  # input_ids and attention_mask, 2x24 int64 each
    buffers = sum(b.numel() * b.element_size() for b in meta.model.buffers())
    assert (memory.parameter_bytes, memory.input_bytes) == (weights, inputs)
    activations = memory.training.peak_forward_bytes
    assert activations > 0
    fixed = weights + buffers + inputs
    expected = {
        "Inference": fixed + memory.inference_activation_peak_bytes,
        "Training, AdamW": fixed + 3 * weights + activations,
        "Training, SGD with momentum": fixed + 2 * weights + activations,
        "Training, AdamW + bf16 autocast": fixed + 3 * weights + activations // 2,
    }
    fits = {row.scenario: row for row in memory.fits}
    assert {name: row.bytes for name, row in fits.items()} == expected
    assert fits["Inference"].bytes == memory.inference_total_bytes
    assert fits["Training, AdamW"].bytes == memory.training.total_bytes["adamw"]
    for row in memory.fits:
        assert row.per_device == {str(k): -(-row.bytes // k) for k in (1, 2, 4, 8)}
    assert memory.device_sizes_gib == [24, 40, 80, 141]
