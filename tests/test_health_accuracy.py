"""Accuracy on eval_batches() against a sample-by-sample hand computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reporter.health.accuracy import evaluate


def batches(n_batches: int, classes: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(9, 5, generator=g), torch.randint(0, classes, (9,), generator=g))
        for _ in range(n_batches)
    ]


def by_hand(model: nn.Module, data, classes: int) -> dict:
    """One sample at a time, with Python loops: an independent tally."""
    correct1 = correct5 = 0
    nll = 0.0
    confusion = [[0] * classes for _ in range(classes)]
    with torch.no_grad():
        for x, y in data:
            for row, target in zip(model(x).tolist(), y.tolist(), strict=True):
                ranked = sorted(range(classes), key=lambda c: -row[c])
                correct1 += ranked[0] == target
                correct5 += target in ranked[:5]
                confusion[target][ranked[0]] += 1
                top = max(row)
                nll += -(row[target] - top - math.log(sum(math.exp(v - top) for v in row)))
    n = sum(len(y) for _, y in data)
    return {"top1": correct1 / n, "top5": correct5 / n, "loss": nll / n, "confusion": confusion}


def test_classifier_accuracy_matches_a_hand_count() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 7))
    data = batches(4, 7)
    result = evaluate(model, iter(data), torch.device("cpu"))
    expected = by_hand(model, data, 7)
    assert result.batches == 4 and result.samples == 36 and result.num_classes == 7
    assert result.top1 == pytest.approx(expected["top1"])
    assert result.top5 == pytest.approx(expected["top5"])
    assert result.loss == pytest.approx(expected["loss"], rel=1e-5)
    assert result.confusion == expected["confusion"]
    for c in range(7):
        count = sum(expected["confusion"][c])
        assert result.class_counts[c] == count
        want = expected["confusion"][c][c] / count if count else None
        assert result.per_class[c] == pytest.approx(want)
    assert 0 < result.top1 < result.top5 < 1  # a wrong tally would be noticed


def test_fewer_than_five_classes_has_no_top5_and_model_mode_is_restored() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5))
    model.train()
    result = evaluate(model, iter(batches(2, 3)), torch.device("cpu"))
    assert result.top5 is None and result.num_classes == 3
    assert model.training  # put back as it was


def test_regression_targets_give_mse() -> None:
    torch.manual_seed(2)
    model = nn.Linear(5, 2)
    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(4, 5, generator=g), torch.randn(4, 2, generator=g)) for _ in range(3)]
    result = evaluate(model, iter(data), torch.device("cpu"))
    with torch.no_grad():
        sq = sum(float(((model(x) - y) ** 2).sum()) for x, y in data)
    assert result.loss_kind == "mse" and result.top1 is None
    assert result.loss == pytest.approx(sq / 24, rel=1e-6)
