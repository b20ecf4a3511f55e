"""Convolutions followed by batch norm that can be folded into one convolution.

At inference, batch norm is a per-channel affine map with fixed statistics, so it folds
into the preceding convolution's weight and bias (torch.nn.utils.fusion.fuse_conv_bn_eval).
A pair qualifies only when the data says so: in a recorded forward the batch norm's only
input is the convolution's output and nothing else reads that output (a second reader
would see the folded values), each module runs once, the channels match, and the batch
norm keeps running statistics.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from torch import nn

from reporter.graph.record import Recording

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def foldable_pairs(recording: Recording, model: nn.Module) -> list[tuple[str, str]]:
    """(conv path, batch-norm path) of every foldable pair, in execution order."""
    calls = recording.calls
    # Readers of each call's output: leaf modules, functional ops and the model output
    # (a container's recorded inputs repeat those of the leaves inside it).
    readers: Counter[int] = Counter()
    for c in calls:
        if c.kind != "module" or c.leaf:
            readers.update({producer for producer, _ in c.inputs})
    runs = Counter(c.name for c in calls if c.kind == "module")
    pairs = []
    for c in calls:
        if c.kind != "module" or not c.leaf or len({p for p, _ in c.inputs}) != 1:
            continue
        conv_call = calls[c.inputs[0][0]]
        if conv_call.kind != "module" or readers[conv_call.idx] != 1:
            continue
        if runs[c.name] != 1 or runs[conv_call.name] != 1:
            continue
        conv, norm = _module(model, conv_call.name), _module(model, c.name)
        if _foldable(conv, norm):
            pairs.append((conv_call.name, c.name))
    return pairs


def _module(model: nn.Module, path: str) -> Any:
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        return None


def _foldable(conv: Any, norm: Any) -> bool:
    return (
        isinstance(conv, CONVS)
        and isinstance(norm, NORMS)
        and norm.running_mean is not None
        and norm.running_var is not None
        and norm.num_features == conv.out_channels
    )


def fold(model: nn.Module, pairs: list[tuple[str, str]]) -> nn.Module:
    """Fold each pair in place (eval mode): the conv gets the folded weights, the batch
    norm becomes nn.Identity. Returns the model."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for conv_path, norm_path in pairs:
        conv, norm = model.get_submodule(conv_path), model.get_submodule(norm_path)
        model.set_submodule(conv_path, fuse_conv_bn_eval(conv, norm))
        model.set_submodule(norm_path, nn.Identity())
    return model
