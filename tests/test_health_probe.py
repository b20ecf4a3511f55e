"""The training probe's figures against independent computations on the same seeded steps."""

from __future__ import annotations

import copy
import statistics

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reporter.health.probe import histogram, run_probe
from reporter.health.training import default_loss


def small_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.Sigmoid(), nn.Linear(12, 3)
    )


def probe(model: nn.Module, x: torch.Tensor, steps: int = 3, **kw):
    loss, source = default_loss(model(x), seed=0)
    args = {"optimizer": "sgd", "lr": 0.1, "steps": steps, "seed": 0, "loss_source": source}
    args.update(kw)
    return run_probe(model, lambda m: m(x), loss, **args), loss


def test_gradient_norms_and_update_ratios_match_a_hand_written_loop() -> None:
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(3))
    model = small_mlp()
    reference = copy.deepcopy(model)
    result, loss = probe(model, x, steps=4)

    # The same 4 SGD steps written out; for SGD the update is -lr * g.
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    grads: dict[str, list[float]] = {"0": [], "2": [], "4": []}
    ratios: dict[str, list[float]] = {"0": [], "2": [], "4": []}
    weight0 = {}
    for step in range(4):
        opt.zero_grad()
        loss(reference(x)).backward()
        for name in grads:
            layer = reference.get_submodule(name)
            w = torch.linalg.vector_norm(torch.cat([layer.weight.flatten(), layer.bias.flatten()]))
            g = torch.linalg.vector_norm(
                torch.cat([layer.weight.grad.flatten(), layer.bias.grad.flatten()])
            )
            if step == 0:
                weight0[name] = float(w.detach())
            grads[name].append(float(g.detach()))
            ratios[name].append(0.1 * float(g.detach()) / float(w.detach()))
        opt.step()

    assert [layer.name for layer in result.layers] == ["0", "2", "4"]  # forward order
    for layer in result.layers:
        assert layer.weight_norm == pytest.approx(weight0[layer.name], rel=1e-5)
        assert layer.grad_norm_first == pytest.approx(grads[layer.name][0], rel=1e-4)
        assert layer.grad_norm_last == pytest.approx(grads[layer.name][-1], rel=1e-4)
        assert layer.update_ratio == pytest.approx(statistics.median(ratios[layer.name]), rel=1e-3)
        assert layer.relative_grad == pytest.approx(
            grads[layer.name][0] / weight0[layer.name], rel=1e-4
        )
        module = reference.get_submodule(layer.name)
        assert layer.params == module.weight.numel() + module.bias.numel()
    total0 = sum(g[0] ** 2 for g in grads.values()) ** 0.5
    assert result.grad_total_first == pytest.approx(total0, rel=1e-4)
    total_last = sum(g[-1] ** 2 for g in grads.values()) ** 0.5
    assert result.grad_total_last == pytest.approx(total_last, rel=1e-4)
    assert result.steps_run == 4 and len(result.losses) == 4
    assert result.losses[-1] < result.losses[0]


def test_activation_shares_match_direct_computation() -> None:
    class Functional(nn.Module):  # F.relu and x.sigmoid(), no activation modules
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(6, 10)
            self.b = nn.Linear(10, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.b(F.relu(self.a(x))) * 20).sigmoid()

    torch.manual_seed(1)
    model = Functional()
    x = torch.randn(8, 6)
    with torch.no_grad():  # lr 0 leaves the weights as they are: every step sees these
        h = F.relu(model.a(x))
        s = (model.b(h) * 20).sigmoid()
    zero = float((h == 0).float().mean())
    dead = float((h == 0).all(dim=0).float().mean())
    saturated = float(((s < 0.01) | (s > 0.99)).float().mean())
    result, _ = probe(model, x, steps=2, lr=0.0)
    sites = {a.name: a for a in result.activations}
    assert set(sites) == {"(root).relu#1", "(root).sigmoid#1"}
    relu, sig = sites["(root).relu#1"], sites["(root).sigmoid#1"]
    assert relu.numel == 2 * h.numel()
    assert relu.zero_fraction == pytest.approx(zero)
    assert relu.dead_fraction == pytest.approx(dead)
    assert sig.saturated_fraction == pytest.approx(saturated)
    assert 0 < saturated < 1 and 0 < zero < 1  # the test would notice a wrong count


def test_activation_modules_are_named_by_their_path() -> None:
    model = small_mlp()
    result, _ = probe(model, torch.randn(4, 6), steps=1)
    assert {a.name: a.op for a in result.activations} == {"1": "relu", "3": "sigmoid"}


def test_nan_in_the_forward_names_the_first_module() -> None:
    class LogOfNegative(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.log(x - 100.0)  # NaN for every x below 100

    model = nn.Sequential(nn.Linear(4, 4), LogOfNegative(), nn.Linear(4, 2))
    result, _ = probe(model, torch.randn(5, 4), steps=3)
    kinds = {n.kind: n for n in result.nonfinite}
    assert kinds["activation"].module == "1" and kinds["activation"].step == 0
    assert kinds["loss"].step == 0
    assert result.steps_run == 1


def test_nan_gradient_names_the_layer_nearest_the_output() -> None:
    class SqrtOfZero(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * 0).sqrt() + x  # forward finite; backward 0 * inf = NaN

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), SqrtOfZero(), nn.Linear(4, 2))
    result, _ = probe(model, torch.randn(5, 4), steps=1)
    grad = [n for n in result.nonfinite if n.kind == "gradient"]
    assert grad and grad[0].module == "1" and grad[0].step == 0
    assert {layer.name for layer in result.layers if layer.nonfinite_grad_step == 0} == {"0", "1"}
    assert result.layers[-1].nonfinite_grad_step is None


def test_histogram_matches_torch_histogram() -> None:
    t = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    h = histogram([t[:400], t[400:]], bins=12)
    counts, edges = torch.histogram(t.double(), bins=12)
    assert h.counts == [int(c) for c in counts]
    assert h.edges == pytest.approx(edges.tolist(), rel=1e-6)
    assert sum(h.counts) == 1000


def test_time_budget_stops_as_soon_as_it_is_spent() -> None:
    # A step slower than the whole budget (a large model) stops the probe after one step,
    # which still yields every per-layer figure.
    result, _ = probe(small_mlp(), torch.randn(4, 6), steps=50, time_budget=0.0)
    assert result.steps_run == 1 and len(result.losses) == 1
    assert all(layer.grad_norm_first is not None for layer in result.layers)
    assert "--train-steps" in result.stopped_early
    full, _ = probe(small_mlp(), torch.randn(4, 6), steps=5)
    assert full.steps_run == 5 and full.stopped_early == ""


def test_default_loss_is_cross_entropy_or_mse_with_seeded_targets() -> None:
    logits = torch.randn(7, 5)
    loss, source = default_loss(logits, seed=4)
    targets = torch.randint(0, 5, (7,), generator=torch.Generator().manual_seed(4))
    assert float(loss(logits)) == pytest.approx(float(F.cross_entropy(logits, targets)))
    assert "cross-entropy" in source
    image = torch.randn(2, 3, 4, 4)
    loss, source = default_loss(image, seed=4)
    target = torch.randn((2, 3, 4, 4), generator=torch.Generator().manual_seed(4))
    assert float(loss(image)) == pytest.approx(float(F.mse_loss(image, target)))
    assert "MSE" in source
