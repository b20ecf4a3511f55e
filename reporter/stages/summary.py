"""Summary stage: torchinfo's per-layer table, with exact per-module parameter counts."""

from __future__ import annotations

from typing import Any

import torchinfo
from torch import nn

from reporter.model_info import _specs, tensor_key
from reporter.report import LayerRow, SummarySection, to_data
from reporter.stages.context import StageContext
from reporter.stages.passes import inference_pass


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
        method=(
            "Rows, depths and output shapes from torchinfo.summary on the sample input "
            "(one forward in eval mode under no_grad); parameters per row are the module's "
            "own and nested parameters, each tensor counted once."
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
    )


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
