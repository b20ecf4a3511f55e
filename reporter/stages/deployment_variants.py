"""Deployment variants for the experiments stage: each precision and runtime a model could
ship in, built on a copy of the model, timed and compared like every experiment.

torchao (the maintained successor of torch.ao.quantization) quantises Linear layers;
ONNX Runtime runs the model exported by torch.onnx. Both come with the ``deploy`` extra;
without them their variants are skipped with the line that installs them. A variant the
backend cannot run is skipped with its reason, never approximated by another.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

INSTALL = "pip install 'perfreport-torch[deploy]' (torchao, onnx, onnxscript, onnxruntime)"


def state_bytes(model: Any) -> int:
    """Bytes of the serialised weights (what a checkpoint of this variant weighs)."""
    size = getattr(model, "perfreport_size_bytes", None)
    if size is not None:
        return int(size)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def _float_inputs(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_float_inputs(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _float_inputs(v, dtype) for k, v in value.items()}
    return value


def bf16_cast(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The whole model and its floating inputs in bfloat16 (half the weights' bytes)."""
    return (
        model.to(torch.bfloat16),
        _float_inputs(args, torch.bfloat16),
        _float_inputs(kwargs, torch.bfloat16),
    )


INT4_GROUP = 32


def _torchao_quantised(model: nn.Module, config: Any, filter_fn: Any = None) -> nn.Module:
    from torchao.quantization import quantize_

    if filter_fn is None:
        quantize_(model, config)  # torchao's default: every Linear layer
    else:
        quantize_(model, config, filter_fn=filter_fn)
    return model


def int4_groupable(module: nn.Module, fqn: str = "") -> bool:
    """int4 groups of 32 weights along each row: the row length must divide into them."""
    return isinstance(module, nn.Linear) and module.in_features % INT4_GROUP == 0


def int8_dynamic(model: nn.Module) -> nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    return _torchao_quantised(model, Int8DynamicActivationInt8WeightConfig())


def int8_weight_only(model: nn.Module) -> nn.Module:
    from torchao.quantization import Int8WeightOnlyConfig

    return _torchao_quantised(model, Int8WeightOnlyConfig())


def int4_weight_only(model: nn.Module) -> nn.Module:
    """Groups of 32 weights share a scale; Linear layers whose rows do not divide into
    groups stay in float. On CUDA torchao's int4 kernels; on the CPU its portable int4
    layout (IntxWeightOnlyConfig)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if device.type == "cuda":
        from torchao.quantization import Int4WeightOnlyConfig

        config: Any = Int4WeightOnlyConfig(group_size=INT4_GROUP)
    else:
        from torchao.quantization import IntxWeightOnlyConfig
        from torchao.quantization.granularity import PerGroup

        config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP))
    return _torchao_quantised(model, config, filter_fn=int4_groupable)


class OrtModel:
    """An ONNX Runtime session called like the model: tensors in, tensors out."""

    def __init__(
        self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: torch.device
    ) -> None:
        import onnxruntime as ort

        self._dir = tempfile.TemporaryDirectory(prefix="perfreport-onnx-")
        path = Path(self._dir.name) / "model.onnx"
        torch.onnx.export(model, args, str(path), kwargs=kwargs or None, dynamo=True, verbose=False)
        self.perfreport_size_bytes = sum(p.stat().st_size for p in Path(self._dir.name).iterdir())
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.providers = providers
        # As many threads as torch uses, and none left spinning between calls: ONNX Runtime's
        # pool spin-waits by default, which slows the model timed beside it and would
        # inflate the speedup.
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *args: Any, **kwargs: Any) -> list[torch.Tensor]:
        flat = [a for a in args if isinstance(a, torch.Tensor)] + [
            v for v in kwargs.values() if isinstance(v, torch.Tensor)
        ]
        feed = {n: t.detach().cpu().numpy() for n, t in zip(self.names, flat, strict=False)}
        return [torch.from_numpy(o) for o in self.session.run(None, feed)]

    def state_dict(self) -> dict[str, Any]:
        return {}


def onnxruntime_model(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> OrtModel:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return OrtModel(model, args, kwargs, device)


def missing(*modules: str) -> str:
    """The skip reason when a module is not installed, else ""."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"{', '.join(absent)} not installed: {INSTALL}" if absent else ""


def has_linear(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Linear) for m in model.modules())


def int4_coverage(model: nn.Module) -> str:
    """Which Linear layers int4 quantises: "" for all, a note for some, a reason for none."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    left = [n for n, m in linears if not int4_groupable(m)]
    if linears and len(left) == len(linears):
        return f"no Linear layer has in_features divisible by {INT4_GROUP} (int4 groups)"
    return f"left in float: {', '.join(left[:5])}" + (" …" if len(left) > 5 else "") if left else ""


def top1_agreement(reference: Any, result: Any) -> float | None:
    """The share of rows whose top-1 class agrees, for a classifier-shaped first floating
    output ([N, C] with C >= 2); None for any other output."""
    from reporter.tensors import tensors_in

    ref = [t for t in tensors_in(reference) if t.is_floating_point()]
    out = [t for t in tensors_in(result) if t.is_floating_point()]
    if not ref or not out or ref[0].shape != out[0].shape:
        return None
    if ref[0].dim() != 2 or ref[0].shape[1] < 2:
        return None
    return float((ref[0].argmax(dim=1) == out[0].argmax(dim=1)).float().mean())


def eval_top1(subject: Any, model: Any, dtype: torch.dtype | None = None) -> float | None:
    """Top-1 accuracy on the file's eval_batches() (their floating inputs cast to
    ``dtype``); None without batches or for a model that is no classifier."""
    if subject.eval_batches is None:
        return None
    from reporter.health.accuracy import evaluate

    batches = ((_float_inputs(x, dtype) if dtype else x, y) for x, y in subject.eval_batches())
    return evaluate(_as_module(model), batches, subject.device).top1


def _as_module(model: Any) -> nn.Module:
    if isinstance(model, nn.Module):
        return model

    class Wrapped(nn.Module):
        def forward(self, *args: Any, **kwargs: Any) -> Any:
            return model(*args, **kwargs)

    return Wrapped()
