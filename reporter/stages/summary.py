"""Summary stage: torchinfo's per-layer table, with exact per-module parameter counts."""

from __future__ import annotations

from typing import Any

import torchinfo
from torch import nn

from reporter import conv_bn
from reporter.graph.record import record
from reporter.mode_dependence import mode_dependence
from reporter.model_info import _specs, tensor_key
from reporter.report import LayerRow, SummarySection, to_data
from reporter.stages.context import StageContext
from reporter.stages.passes import inference_pass
from reporter.tensors import tensors_in


def run(ctx: StageContext) -> SummarySection:
    result = inference_pass(ctx)
    model = ctx.subject.model
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    rows = [
        _row(layer, names.get(id(layer.module), layer.var_name or "?"))
        for layer in result.stats.summary_list
        if layer.depth <= ctx.options.depth
    ]
    return SummarySection(
        depth=ctx.options.depth,
        layers=rows,
        torchinfo_version=getattr(torchinfo, "__version__", ""),
        torchinfo_total_params=int(result.stats.total_params),
        outputs=[to_data(s) for s in _specs("output", result.output)],
        final_op=result.final_op,
        output_nonfinite=_nonfinite(result.output),
        forward_warnings=result.warnings,
        **_mode_fields(ctx),
        conv_bn_pairs=_conv_bn_pairs(ctx, result.recording),
        loss_fn_given=ctx.subject.loss_fn is not None,
        method=(
            "Rows, depths and output shapes from torchinfo.summary on the sample input "
            "(one forward in eval mode under no_grad); parameters per row are the module's "
            "own and nested parameters, each tensor counted once. Modules that behave "
            "differently in training: classes whose code reads .training, judged by torch's "
            "semantics for its own classes and by running any other one on its input in both "
            "modes. Conv→BatchNorm pairs: from a recorded forward, a batch norm reading a "
            "convolution's output that nothing else reads."
        ),
    )


def _row(layer: Any, name: str) -> LayerRow:
    module: nn.Module = layer.module
    unique = {tensor_key(p): p for p in module.parameters()}
    params = sum(p.numel() for p in unique.values())
    trainable = sum(p.numel() for p in unique.values() if p.requires_grad)
    return LayerRow(
        name=name,
        type=layer.class_name,
        depth=layer.depth,
        output_shape=_shape(layer.output_size),
        params=params,
        trainable=_trainable_label(params, trainable),
        is_leaf=layer.is_leaf_layer,
        dims=_dims(module),
    )


def _nonfinite(output: Any) -> int:
    tensors = [t for t in tensors_in(output) if t.is_floating_point() and t.device.type != "meta"]
    return sum(int((~t.isfinite()).sum()) for t in tensors)


def _dims(module: nn.Module) -> list[int]:
    """The sizes that Tensor Core alignment cares about: in and out features/channels."""
    for a, b in (
        ("in_features", "out_features"),
        ("in_channels", "out_channels"),
        ("num_embeddings", "embedding_dim"),
        ("input_size", "hidden_size"),
    ):
        if isinstance(getattr(module, a, None), int) and isinstance(getattr(module, b, None), int):
            return [getattr(module, a), getattr(module, b)]
    return []


def _mode_fields(ctx: StageContext) -> dict[str, Any]:
    """Modules whose output changes in training mode, when the model was built in it
    (reporter/mode_dependence.py says how they are found)."""
    if not ctx.subject.built_in_train_mode:
        return {}
    found = mode_dependence(ctx.subject.model, ctx.subject.args, ctx.subject.kwargs)
    return {
        "train_mode_modules": found.differs,
        "train_mode_types": found.types,
        "train_mode_same": len(found.same),
    }


def _conv_bn_pairs(ctx: StageContext, recording: Any) -> list[list[str]] | None:
    """Conv -> BatchNorm pairs foldable at inference, from the graph recording of the
    shared pass, else from a recording of its own when the model has both layer kinds;
    None on the meta device (nothing runs) or when no recording could be made."""
    model = ctx.subject.model
    kinds = {type(m) for m in model.modules()}
    if not (kinds & set(conv_bn.CONVS) and kinds & set(conv_bn.NORMS)):
        return []
    if ctx.subject.device.type == "meta":
        return None
    try:
        if recording is None:
            recording = record(model, ctx.subject.args, ctx.subject.kwargs)
        return [list(p) for p in conv_bn.foldable_pairs(recording, model)]
    except Exception:  # noqa: BLE001 - a missing count must not cost the summary
        return None


def _shape(size: Any) -> Any:
    if isinstance(size, (list, tuple)):
        return [_shape(s) for s in size]
    return int(size) if isinstance(size, int) else size


def _trainable_label(params: int, trainable: int) -> str:
    if params == 0:
        return ""
    if trainable == params:
        return "yes"
    return "no" if trainable == 0 else "partial"
