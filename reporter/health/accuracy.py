"""Loss and accuracy on the model file's eval_batches(): top-1/top-5, per class, confusion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from reporter.report.health import EvalAccuracy
from reporter.tensors import tensors_in

MAX_CONFUSION_CLASSES = 50  # a bigger matrix is not readable in a report
MAX_BATCHES = 200


def evaluate(model: torch.nn.Module, batches: Iterable[Any], device: torch.device) -> EvalAccuracy:
    """Run `model` (in eval mode, no_grad) over (inputs, targets) batches.

    Classifier: logits [N, C] with integer targets [N] (or [N, T, C] with [N, T]).
    Otherwise the loss is the MSE of the first output to the targets when shapes match.
    """
    was_training = model.training
    model.eval()
    result = EvalAccuracy(batches=0, samples=0)
    loss_sum, top1, top5 = 0.0, 0, 0
    confusion: torch.Tensor | None = None
    try:
        with torch.no_grad():
            for batch in batches:
                if result.batches >= MAX_BATCHES:
                    result.note = f"only the first {MAX_BATCHES} batches were evaluated"
                    break
                inputs, targets = _unpack(batch)
                output = _call(model, inputs, device)
                logits = next(t for t in tensors_in(output) if t.is_floating_point())
                targets = targets.to(logits.device)
                result.batches += 1
                if _is_classifier(logits, targets):
                    classes = logits.shape[-1]
                    logits = logits.reshape(-1, classes).float()
                    targets = targets.reshape(-1).long()
                    result.loss_kind = "cross-entropy"
                    loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
                    k = min(5, classes)
                    best = logits.topk(k, dim=1).indices
                    top1 += int((best[:, 0] == targets).sum())
                    top5 += int((best == targets[:, None]).any(dim=1).sum())
                    if confusion is None:
                        confusion = torch.zeros(classes, classes, dtype=torch.long)
                    flat = (targets * classes + best[:, 0]).cpu()
                    confusion += torch.bincount(flat, minlength=classes * classes).reshape(
                        classes, classes
                    )
                    result.samples += targets.numel()
                else:
                    result.loss_kind = "mse"
                    loss_sum += float(F.mse_loss(logits.float(), targets.float(), reduction="sum"))
                    result.samples += targets.numel()
    finally:
        model.train(was_training)
    if result.samples:
        result.loss = loss_sum / result.samples
    if confusion is not None:
        classes = confusion.shape[0]
        result.num_classes = classes
        result.top1 = top1 / result.samples
        result.top5 = top5 / result.samples if classes >= 5 else None
        counts = confusion.sum(dim=1)
        result.class_counts = [int(c) for c in counts]
        result.per_class = [
            int(confusion[c, c]) / int(counts[c]) if counts[c] else None for c in range(classes)
        ]
        if classes <= MAX_CONFUSION_CLASSES:
            result.confusion = confusion.tolist()
    return result


def _unpack(batch: Any) -> tuple[Any, torch.Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError("eval_batches() must yield (inputs, targets) pairs")
    inputs, targets = batch
    if not isinstance(targets, torch.Tensor):
        targets = torch.as_tensor(targets)
    return inputs, targets


def _call(model: torch.nn.Module, inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return model(inputs.to(device))
    if isinstance(inputs, dict):
        return model(**{k: _to(v, device) for k, v in inputs.items()})
    return model(*[_to(v, device) for v in inputs])


def _to(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _is_classifier(logits: torch.Tensor, targets: torch.Tensor) -> bool:
    return (
        not targets.is_floating_point()
        and logits.dim() == targets.dim() + 1
        and logits.shape[:-1] == targets.shape
        and logits.shape[-1] >= 2
    )
