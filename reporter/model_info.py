"""Facts about the model that need no forward pass: unique parameters, inputs, modules."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from reporter.report import ModelInfo, ParameterTotals, SharedTensor, TensorSpec
from reporter.subject import Subject
from reporter.units import dtype_name


def describe_model(subject: Subject) -> ModelInfo:
    model = subject.model
    return ModelInfo(
        class_name=type(model).__name__,
        source=subject.source,
        name=subject.name,
        found_by=subject.found_by,
        device=str(subject.device),
        modules=sum(1 for _ in model.modules()),
        inputs=tensor_specs(subject.args, subject.kwargs),
        parameters=count_parameters(model),
        checkpoint=subject.checkpoint,
    )


def tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    """Identity of the memory behind a tensor: two names for one tensor get one key.

    Meta tensors have no address, so they are told apart by object identity only.
    """
    if t.device.type == "meta":
        return ("id", id(t))
    return (
        "mem",
        t.device.type,
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        tuple(t.shape),
        tuple(t.stride()),
    )


def count_parameters(model: nn.Module) -> ParameterTotals:
    """Exact totals with tied tensors counted once (torchinfo counts every name)."""
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    tensors: dict[tuple[Any, ...], nn.Parameter] = {}
    per_name = 0
    for name, p in model.named_parameters(remove_duplicate=False):
        key = tensor_key(p)
        groups[key].append(name)
        tensors.setdefault(key, p)
        per_name += p.numel()
    totals = ParameterTotals(total=0, trainable=0, frozen=0, bytes=0, counted_per_name=per_name)
    for key, p in tensors.items():
        n = p.numel()
        totals.total += n
        totals.bytes += n * p.element_size()
        if p.requires_grad:
            totals.trainable += n
        else:
            totals.frozen += n
        dtype = dtype_name(p.dtype)
        totals.by_dtype[dtype] = totals.by_dtype.get(dtype, 0) + n
        if len(groups[key]) > 1:
            totals.shared.append(SharedTensor(names=groups[key], numel=n))
    totals.duplicates = find_duplicates(groups, tensors)
    buffers = {tensor_key(b): b for b in model.buffers()}
    totals.buffers = sum(b.numel() for b in buffers.values())
    totals.buffer_bytes = sum(b.numel() * b.element_size() for b in buffers.values())
    return totals


def find_duplicates(
    groups: dict[tuple[Any, ...], list[str]], tensors: dict[tuple[Any, ...], nn.Parameter]
) -> list[SharedTensor]:
    """Parameters with equal values in separate memory: likely meant to be tied.

    Only tensors of the same shape and dtype are compared, and only exact equality counts,
    so freshly initialised layers (random, different) never match.
    """
    by_shape: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for key, p in tensors.items():
        if p.device.type != "meta" and p.numel() >= 64:
            by_shape[(tuple(p.shape), p.dtype)].append(key)
    found = []
    for keys in by_shape.values():
        matched: set[tuple[Any, ...]] = set()
        for i, a in enumerate(keys):
            if a in matched:
                continue
            same = [
                b for b in keys[i + 1 :] if b not in matched and torch.equal(tensors[a], tensors[b])
            ]
            if same and not _constant(tensors[a]):
                matched.update(same)
                names = [n for k in (a, *same) for n in groups[k][:1]]
                found.append(SharedTensor(names=names, numel=tensors[a].numel()))
    return found


def _constant(t: torch.Tensor) -> bool:
    """All-equal tensors (zeros, ones: fresh biases and norms) match by construction."""
    flat = t.detach().reshape(-1)
    return bool((flat == flat[0]).all())


def tensor_specs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[TensorSpec]:
    named = [(f"args[{i}]", v) for i, v in enumerate(args)] + list(kwargs.items())
    return [spec for name, value in named for spec in _specs(name, value)]


def _specs(name: str, value: Any) -> list[TensorSpec]:
    if isinstance(value, torch.Tensor):
        dtype = dtype_name(value.dtype)
        return [TensorSpec(name, list(value.shape), dtype, str(value.device))]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _specs(f"{name}.{k}", v)]
    if isinstance(value, (tuple, list)):
        return [s for i, v in enumerate(value) for s in _specs(f"{name}[{i}]", v)]
    if hasattr(value, "__dataclass_fields__"):
        return [
            s for k in value.__dataclass_fields__ for s in _specs(f"{name}.{k}", getattr(value, k))
        ]
    return []
