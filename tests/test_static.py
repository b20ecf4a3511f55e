"""Static analysis figures checked against independent computations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SAMPLES
from helpers import flop_counter_total, run_stages, subject_for, unique_numel

from reporter.model_info import count_parameters

SAMPLE_FILES = sorted(SAMPLES.glob("*.py"))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_models_totals_match_independent_counts(path: Path, tmp_path: Path) -> None:
    subject = subject_for(path, tmp_path)
    expected_flops = flop_counter_total(subject)
    sections = run_stages(subject, tmp_path, "summary", "flops", "memory")
    totals = count_parameters(subject.model)
    assert totals.total == unique_numel(subject.model)
    assert totals.trainable == sum(p.numel() for p in subject.model.parameters() if p.requires_grad)
    assert sections["flops"].forward_total == expected_flops
    # the per-module figures add up: the root row is the whole forward
    root = next(m for m in sections["flops"].by_module if m.name == "")
    assert root.forward == expected_flops
    assert sections["memory"].parameter_bytes == sum(
        p.numel() * p.element_size() for p in subject.model.parameters()
    )
    assert sections["summary"].layers[0].params == totals.total


def test_mnist_flops_by_hand(tmp_path: Path) -> None:
    """Conv and Linear FLOPs of the MNIST CNN at batch 8, worked out by hand (2 per MAC)."""
    subject = subject_for(SAMPLES / "mnist_cnn.py", tmp_path)
    flops = run_stages(subject, tmp_path, "flops", train=True)["flops"]
    batch = 8
    conv1 = 2 * batch * 32 * 26 * 26 * (1 * 3 * 3)
    conv2 = 2 * batch * 64 * 24 * 24 * (32 * 3 * 3)
    fc1 = 2 * batch * 9216 * 128
    fc2 = 2 * batch * 128 * 10
    by_name = {m.name: m.forward for m in flops.by_module}
    assert by_name["conv1"] == conv1
    assert by_name["conv2"] == conv2
    assert by_name["fc1"] == fc1
    assert by_name["fc2"] == fc2
    assert flops.forward_total == conv1 + conv2 + fc1 + fc2
    # backward of a Linear with grad-requiring input: 2 matmuls of the forward's size
    assert next(m.backward for m in flops.by_module if m.name == "fc1") == 2 * fc1
    # conv1's input needs no gradient: only the weight gradient is computed
    assert next(m.backward for m in flops.by_module if m.name == "conv1") == conv1


def test_mnist_memory_by_hand(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "mnist_cnn.py", tmp_path)
    memory = run_stages(subject, tmp_path, "memory")["memory"]
    params = 1_199_882
    assert memory.parameter_bytes == params * 4
    assert memory.input_bytes == 8 * 1 * 28 * 28 * 4
    assert memory.output_bytes == 8 * 10 * 4
    # conv1's output (8x32x26x26) and conv2's (8x64x24x24) are alive together at the peak
    conv2_out = 8 * 64 * 24 * 24 * 4
    assert memory.inference_activation_peak_bytes >= conv2_out + 8 * 32 * 26 * 26 * 4
    training = memory.training
    assert training.gradient_bytes == params * 4
    assert training.optimizer_state_bytes["adam"] == 2 * params * 4
    assert training.optimizer_state_bytes["sgd"] == 0
    # autograd keeps at least conv2's output (for relu) alive for backward
    assert training.saved_activation_bytes >= conv2_out
    assert training.total_bytes["adam"] - training.total_bytes["sgd"] == 2 * params * 4


def test_summary_rows_follow_torchinfo(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "resnet18.py", tmp_path)
    summary = run_stages(subject, tmp_path, "summary", depth=2)["summary"]
    names = [r.name for r in summary.layers]
    assert names[0] == ""
    assert "layer1" in names and "layer1.0" in names
    assert all(r.depth <= 2 for r in summary.layers)
    fc = next(r for r in summary.layers if r.name == "fc")
    assert fc.output_shape == [2, 1000]
    assert fc.params == 512 * 1000 + 1000
    layer4 = next(r for r in summary.layers if r.name == "layer4")
    module = subject.model.get_submodule("layer4")
    assert layer4.params == sum(p.numel() for p in module.parameters())


def test_tied_weights_counted_once(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "gpt_decoder.py", tmp_path)
    totals = count_parameters(subject.model)
    tied = subject.model.wte.weight.numel()
    assert totals.total == totals.counted_per_name - tied
    assert [sorted(s.names) for s in totals.shared] == [["lm_head.weight", "wte.weight"]]


def test_gpt2_from_config_unique_parameters(tmp_path: Path, model_file) -> None:
    """GPT-2 small: 124,439,808 unique parameters (lm_head tied to wte)."""
    pytest.importorskip("transformers")
    path = model_file(
        """
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        def build_model():
            return GPT2LMHeadModel(GPT2Config())

        def example_inputs():
            return {"input_ids": torch.randint(0, 50257, (1, 16))}
        """
    )
    subject = subject_for(path, tmp_path)
    sections = run_stages(subject, tmp_path, "summary", "flops")
    totals = count_parameters(subject.model)
    assert totals.total == 124_439_808 == unique_numel(subject.model)
    assert (
        sections["summary"].torchinfo_total_params > totals.total
    )  # torchinfo counts the tie twice
    assert sections["flops"].forward_total == flop_counter_total(subject)
    # FlopCounterMode alone misses the CPU flash kernel's attention: worked out by hand
    layers, heads, seq, head_dim = 12, 12, 16, 64
    attention = layers * 2 * (2 * heads * seq * seq * head_dim)
    plain = flop_counter_total(subject, ordinary_path=False)
    assert sections["flops"].forward_total == plain + attention


def test_bert_from_config(tmp_path: Path, model_file) -> None:
    pytest.importorskip("transformers")
    path = model_file(
        """
        import torch
        from transformers import BertConfig, BertModel

        def build_model():
            return BertModel(BertConfig(hidden_size=128, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=256))

        def example_inputs():
            ids = torch.randint(0, 1000, (2, 24))
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        """
    )
    subject = subject_for(path, tmp_path)
    sections = run_stages(subject, tmp_path, "summary", "flops", "memory")
    assert count_parameters(subject.model).total == unique_numel(subject.model)
    assert sections["flops"].forward_total == flop_counter_total(subject)
    # BERT returns a ModelOutput: its tensors are found for the output figures
    assert sections["memory"].output_bytes > 0
    assert {o["name"] for o in sections["summary"].outputs} >= {"output.last_hidden_state"}


def test_dtype_and_frozen_parameters(tmp_path: Path, model_file) -> None:
    path = model_file(
        """
        import torch
        from torch import nn

        def build_model():
            m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
            m[0].requires_grad_(False)
            return m

        example_inputs = torch.randn(3, 4)
        """
    )
    subject = subject_for(path, tmp_path, dtype="float64")
    totals = count_parameters(subject.model)
    assert totals.frozen == 4 * 8 + 8
    assert totals.trainable == 8 + 8 + 8 * 2 + 2
    assert totals.by_dtype == {"float64": totals.total}
    assert totals.bytes == totals.total * 8
    assert totals.buffers == 8 + 8 + 1  # running mean, var, num_batches_tracked
    assert subject.args[0].dtype == torch.float64


def counting_model(model_file, calls: Path, out_features: int, batch: int) -> Path:  # noqa: ANN001
    """A one-layer model file that appends an "x" to ``calls`` at every forward."""
    return model_file(
        f"""
        import torch
        from torch import nn

        class Counting(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, {out_features})

            def forward(self, x):
                with open({str(calls)!r}, "a") as f:
                    f.write("x")
                return self.fc(x)

        def example_inputs():
            return torch.randn({batch}, 4)
        """
    )


def test_quick_static_report_runs_the_model_once(cli, tmp_path: Path, model_file) -> None:
    """--only summary,flops shares torchinfo's forward: the model runs exactly once."""
    calls = tmp_path / "calls.txt"
    path = counting_model(model_file, calls, out_features=2, batch=3)
    assert cli(path, "-o", tmp_path / "out", "--only", "summary,flops").code == 0
    assert calls.read_text() == "x"
    calls.unlink()
    assert cli(path, "-o", tmp_path / "out2", "--only", "summary,flops,memory").code == 0
    assert calls.read_text() == "xx"  # the memory stage adds one autograd forward
    calls.unlink()
    assert cli(path, "-o", tmp_path / "out3", "--only", "summary,graph").code == 0
    assert calls.read_text() == "x"  # the graph is recorded during torchinfo's forward


@pytest.mark.parametrize("kind", ["tuple", "dataclass", "list"])
def test_structured_outputs(tmp_path: Path, model_file, kind: str) -> None:
    wrap = {
        "tuple": "return (y, y.sum(-1))",
        "list": "return [y, y * 2]",
        "dataclass": "return Out(logits=y, extra={'aux': y.mean(-1)})",
    }[kind]
    path = model_file(
        f"""
        from dataclasses import dataclass
        import torch
        from torch import nn

        @dataclass
        class Out:
            logits: torch.Tensor
            extra: dict

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 6)

            def forward(self, x):
                y = self.fc(x)
                {wrap}

        def example_inputs():
            return torch.randn(5, 4)
        """
    )
    subject = subject_for(path, tmp_path)
    sections = run_stages(subject, tmp_path, "summary", "flops", "memory")
    shapes = [o["shape"] for o in sections["summary"].outputs]
    expected = {"tuple": [[5, 6], [5]], "list": [[5, 6], [5, 6]], "dataclass": [[5, 6], [5]]}[kind]
    assert shapes == expected
    assert sections["flops"].forward_total == 2 * 5 * 4 * 6
    assert sections["flops"].backward_total == 2 * 5 * 4 * 6  # weight gradient only
    out_bytes = sum(4 * torch.Size(s).numel() for s in expected)
    assert sections["memory"].output_bytes == out_bytes


def test_health_probe_reuses_the_inference_output_for_its_loss(tmp_path: Path, model_file) -> None:
    """The default loss needs only the output's shape: the summary's forward provides it."""
    calls = tmp_path / "calls.txt"
    path = counting_model(model_file, calls, out_features=3, batch=5)
    subject = subject_for(path, tmp_path)
    sections = run_stages(
        subject, tmp_path, "summary", "health", stage_options={"health": {"train_steps": 2}}
    )
    assert sections["health"].probe.steps_run == 2
    assert calls.read_text() == "x" * 3  # torchinfo's forward, then the two training steps


def test_static_passes_do_not_import_dynamo(tmp_path: Path) -> None:
    """torch would import torch._dynamo (seconds) at the first dispatch of each mode."""
    import subprocess
    import sys

    code = f"""
import sys
from pathlib import Path
sys.path[:0] = [{str(Path(__file__).parent)!r}]
from helpers import run_stages, subject_for
from reporter.stages import passes
tmp = Path({str(tmp_path)!r})
subject = subject_for(Path({str(SAMPLES / "mnist_cnn.py")!r}), tmp)
sections = run_stages(subject, tmp, "summary", "flops", "memory")
assert sections["flops"].forward_total > 0
handler = passes.LiveTensorTracker.__torch_dispatch__.__wrapped__
print("torch._dynamo" in sys.modules, hasattr(handler, passes.DYNAMO_MARK))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # not imported, and the mark taken off


def test_training_pass_runs_in_train_mode_and_leaves_the_model_as_it_was(
    tmp_path: Path, model_file
) -> None:
    """In train mode dropout keeps its mask for backward and batch norm its batch
    statistics. By hand, batch 32: the input (32x64 fp32, saved by the first Linear), the
    mask (32x256: on CPU dropout multiplies by a float32 noise tensor and keeps it; CUDA's
    fused kernel keeps bytes), the dropout output (32x256 fp32, saved by batch norm), the
    batch mean and inverse std (256 fp32 each), batch norm's output (32x256 fp32)."""
    path = model_file(
        """
        import torch
        from torch import nn

        def build_model():
            return nn.Sequential(nn.Linear(64, 256), nn.Dropout(0.5), nn.BatchNorm1d(256),
                                 nn.Linear(256, 10))

        def example_inputs():
            return torch.randn(32, 64)
        """
    )
    subject = subject_for(path, tmp_path)
    bn = subject.model[2]
    before = {k: v.clone() for k, v in subject.model.state_dict().items()}
    memory = run_stages(subject, tmp_path, "memory")["memory"]
    after = subject.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats untouched
    assert not any(m.training for m in subject.model.modules())
    fp32, batch = 4, 32
    dropout = batch * 64 * fp32 + batch * 256 * fp32 + batch * 256 * fp32
    # batch norm in train mode saves its input (the dropout output, counted once), the
    # batch mean and inverse std; the last Linear saves batch norm's output
    norm = 2 * 256 * fp32 + batch * 256 * fp32
    assert memory.training.saved_activation_bytes == dropout + norm
    assert "eval mode" not in memory.method
    assert int(bn.num_batches_tracked) == 0


def test_training_pass_falls_back_to_eval_mode_with_a_note(tmp_path: Path, model_file) -> None:
    """Batch norm on a batch of one cannot run in train mode: the pass runs in eval mode
    and the memory section says why."""
    path = model_file(
        """
        import torch
        from torch import nn

        def build_model():
            return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 2))

        def example_inputs():
            return torch.randn(1, 8)
        """
    )
    subject = subject_for(path, tmp_path)
    memory = run_stages(subject, tmp_path, "memory")["memory"]
    assert "ran in eval mode: in train mode the pass raised" in memory.method
    assert "more than 1 value per channel" in memory.method
    assert memory.training.gradient_bytes == 4 * sum(p.numel() for p in subject.model.parameters())
    assert not any(m.training for m in subject.model.modules())


def test_backward_flops_are_what_backward_ran(tmp_path: Path, model_file) -> None:
    """An auxiliary head that runs in train mode only is forward work: the backward
    figure is FlopCounterMode's count around loss.backward() alone, measured here on the
    same train-mode step."""
    from torch.utils.flop_counter import FlopCounterMode

    from reporter.stages.passes import training_loss

    path = model_file(
        """
        import torch
        from torch import nn

        class WithAux(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Linear(32, 64)
                self.head = nn.Linear(64, 4)
                self.aux = nn.Linear(64, 4)

            def forward(self, x):
                h = self.body(x)
                out = self.head(h)
                return out + self.aux(h) if self.training else out

        def build_model():
            return WithAux()

        def example_inputs():
            return torch.randn(8, 32)
        """
    )
    subject = subject_for(path, tmp_path)
    flops = run_stages(subject, tmp_path, "flops", "memory")["flops"]
    assert flops.forward_total == 2 * 8 * 32 * 64 + 2 * 8 * 64 * 4  # eval: body + head
    model = subject.model.train()
    loss = training_loss(subject, subject.call())
    with FlopCounterMode(display=False) as counter:
        loss.backward()
    model.eval()
    assert flops.backward_total == counter.get_total_flops()
    by_module = {m.name: m for m in flops.by_module}
    assert by_module["aux"].forward == 0 and by_module["aux"].backward > 0
