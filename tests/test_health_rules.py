"""Every health rule on models built to show its problem, and on healthy counterparts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import reporter.rules.health  # noqa: F401  (registers the rules)
from reporter.health.probe import run_probe
from reporter.health.training import default_loss
from reporter.report import ModelInfo, Report
from reporter.report.health import HealthSection, LayerHealth, TrainingProbe
from reporter.rules.registry import RULES, default_thresholds, run_rules

PROBE_RULES = {
    "vanishing-gradients",
    "exploding-gradients",
    "dead-relu",
    "saturated-activations",
    "update-ratio",
    "loss-not-falling",
    "nan-inf",
}


def mlp(depth: int, act: type[nn.Module], *, scale: float = 1.0, bias: float | None = None):
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(16 if i == 0 else 32, 32)
        with torch.no_grad():
            linear.weight.mul_(scale)
            if bias is not None:
                linear.bias.fill_(bias)
        layers += [linear, act()]
    return nn.Sequential(*layers, nn.Linear(32, 4))


def train(model: nn.Module, *, optimizer: str = "adam", lr: float = 3e-3, steps: int = 10):
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    loss, source = default_loss(model(x), seed=0)
    return run_probe(
        model,
        lambda m: m(x),
        loss,
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        seed=0,
        loss_source=source,
    )


def findings(probe: TrainingProbe) -> dict[str, list]:
    report = Report(model=ModelInfo("m", "m.py"), health=HealthSection(probe=probe))
    out: dict[str, list] = {}
    for f in run_rules(report):
        assert f.rule != "rule-error", f.title
        out.setdefault(f.rule, []).append(f)
    return out


@pytest.fixture(scope="module")
def healthy() -> dict[str, list]:
    return findings(train(mlp(4, nn.ReLU)))


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_healthy_two_layer_nets_raise_no_probe_finding(act: type[nn.Module]) -> None:
    probe = train(mlp(2, act))
    assert probe.losses[-1] < probe.losses[0]
    assert not set(findings(probe)) & PROBE_RULES


def test_vanishing_gradients_in_a_deep_sigmoid_mlp(healthy: dict) -> None:
    probe = train(mlp(10, nn.Sigmoid), steps=3)
    layers = [x for x in probe.layers if x.relative_grad]
    ratio = layers[0].relative_grad / layers[-1].relative_grad
    found = findings(probe)["vanishing-gradients"][0]
    assert ratio < default_thresholds()["health.vanishing_ratio"]
    assert found.evidence["ratio"] == f"{ratio:.3e}"
    assert found.evidence["first_layer"] == "0" and found.evidence["last_layer"] == "20"
    assert "vanishing-gradients" not in healthy


def test_exploding_gradients_from_a_badly_scaled_init(healthy: dict) -> None:
    probe = train(mlp(6, nn.ReLU, scale=8.0), steps=3)
    assert probe.grad_total_first > default_thresholds()["health.grad_norm_high"]
    found = findings(probe)["exploding-gradients"][0]
    assert found.evidence["grad_norm_first"] == f"{probe.grad_total_first:.3e}"
    assert "exploding-gradients" not in healthy


def test_nan_gradient_is_a_critical_exploding_finding() -> None:
    class SqrtOfZero(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * 0).sqrt() + x

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), SqrtOfZero(), nn.Linear(8, 4))
    found = findings(train(model, steps=1))
    assert found["exploding-gradients"][0].severity == "critical"
    assert found["exploding-gradients"][0].target == "0"
    assert found["nan-inf"][0].title.startswith("NaN/inf in the gradient in 0")


def test_dead_relus_from_large_negative_biases(healthy: dict) -> None:
    probe = train(mlp(3, nn.ReLU, bias=-5.0), steps=3)
    dead = findings(probe)["dead-relu"][0]
    worst = max(probe.activations, key=lambda a: a.zero_fraction or 0)
    assert worst.zero_fraction > 0.9
    assert dead.target == worst.name
    assert f"{100 * worst.zero_fraction:.1f}%" in dead.title
    assert "dead-relu" not in healthy
    # no gradient passes the dead units: the layers before them are named, not rated
    blocked = findings(probe)["vanishing-gradients"][0]
    zero = [x.name for x in probe.layers if x.grad_norm_median == 0]
    assert zero == ["0", "2", "4"] and blocked.evidence["layers"] == "0, 2, 4"
    assert "update-ratio" not in findings(probe)


def test_saturated_tanh_from_large_weights(healthy: dict) -> None:
    probe = train(mlp(3, nn.Tanh, scale=12.0), steps=3)
    hit = findings(probe)["saturated-activations"][0]
    worst = max(probe.activations, key=lambda a: a.saturated_fraction or 0)
    assert worst.saturated_fraction > 0.5 and hit.target == worst.name
    assert "saturated-activations" not in healthy


def test_update_ratio_too_high_and_too_low(healthy: dict) -> None:
    high = findings(train(mlp(2, nn.ReLU), optimizer="sgd", lr=50.0, steps=3))["update-ratio"]
    assert [f.severity for f in high if "high" in f.title] == ["warning"]
    low = findings(train(mlp(2, nn.ReLU), lr=1e-8, steps=3))["update-ratio"]
    assert [f.severity for f in low if "low" in f.title] == ["info"]
    assert "update-ratio" not in healthy


def test_loss_not_falling_and_diverging(healthy: dict) -> None:
    flat = findings(train(mlp(2, nn.ReLU), lr=1e-8, steps=6))["loss-not-falling"][0]
    assert flat.severity == "warning" and "does not fall" in flat.title
    probe = train(mlp(2, nn.ReLU), optimizer="sgd", lr=50.0, steps=6)
    assert not all(math.isfinite(v) for v in probe.losses) or probe.losses[-1] > 2 * probe.losses[0]
    diverging = findings(probe)["loss-not-falling"][0]
    assert diverging.severity == "critical"
    assert "loss-not-falling" not in healthy


def test_nan_in_activations_names_the_module(healthy: dict) -> None:
    class Log(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.log(x - 50)

    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), Log(), nn.Linear(8, 4))
    found = findings(train(model, steps=2))["nan-inf"][0]
    assert found.severity == "critical" and found.target == "2"
    assert found.evidence["activation"] == "2 at step 0"
    assert "nan-inf" not in healthy


def test_health_thresholds_are_declared_with_the_prefix() -> None:
    health_rules = [r for r in RULES.values() if r.reads == ("health",)]
    assert len(health_rules) >= 11
    for r in health_rules:
        assert all(name.startswith("health.") for name in r.thresholds)


def test_a_threshold_override_turns_a_finding_off() -> None:
    probe = train(mlp(3, nn.ReLU, bias=-5.0), steps=3)
    report = Report(model=ModelInfo("m", "m.py"), health=HealthSection(probe=probe))
    assert any(f.rule == "dead-relu" for f in run_rules(report))
    off = run_rules(report, {"health.dead_relu_fraction": 1.0})
    assert not any(f.rule == "dead-relu" for f in off)


def layer(name: str, rel: float, grad: float = 1.0) -> LayerHealth:
    return LayerHealth(name, "Linear", 10, 1.0, grad, grad, grad, 1e-3, rel)


def probe_of(layers: list[LayerHealth], first: float = 1.0, last: float = 1.0) -> TrainingProbe:
    return TrainingProbe(
        optimizer="adam",
        lr=1e-3,
        steps=5,
        steps_run=5,
        loss_source="x",
        losses=[2.0, 1.9, 1.8, 1.7, 1.6],
        layers=layers,
        grad_total_first=first,
        grad_total_last=last,
    )


def test_exploding_by_growth_towards_the_input_and_over_the_steps() -> None:
    towards_input = probe_of([layer("a", 50.0), layer("b", 1.0), layer("c", 0.01)])
    hit = findings(towards_input)["exploding-gradients"][0]
    assert hit.evidence["ratio"] == f"{50.0 / 0.01:.3e}" and hit.target == "a"
    steady = probe_of([layer("a", 5.0), layer("b", 1.0), layer("c", 0.01)])
    assert "exploding-gradients" not in findings(steady)  # 500x is under 1e3
    growing = findings(probe_of([layer("a", 1.0)], first=0.5, last=2000.0))
    assert "grew 4.0e+03x" in growing["exploding-gradients"][0].title
    assert "exploding-gradients" not in findings(probe_of([layer("a", 1.0)], 0.5, 400.0))
