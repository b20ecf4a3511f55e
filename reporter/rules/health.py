"""Rules that read the health section: the training probe and the TensorBoard curves."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable

from reporter.report import Finding, Report
from reporter.report.health import ActivationHealth, LayerHealth, ScalarCurve, TrainingProbe
from reporter.rules.registry import evidence, rule
from reporter.units import finite

# Layers whose gradient is sparse by nature (only the rows of the tokens seen): their
# relative gradient says nothing about vanishing.
SPARSE_LAYERS = {"Embedding", "EmbeddingBag"}
VALIDATION_WORDS = ("validation", "valid", "val", "eval", "test", "dev")


def _probe(report: Report) -> TrainingProbe | None:
    return report.health.probe if report.health is not None else None


def _gradient_path(probe: TrainingProbe) -> list[LayerHealth]:
    """Layers with a finite, non-zero relative gradient, input side first."""
    return [
        layer
        for layer in probe.layers
        if layer.type not in SPARSE_LAYERS
        and finite(layer.relative_grad)
        and layer.relative_grad > 0
    ]


def _no_gradient(probe: TrainingProbe) -> list[LayerHealth]:
    """Layers whose gradient is exactly zero at every step, upstream of one that has one."""
    ran = [x for x in probe.layers if x.grad_norm_median is not None]
    live = [i for i, x in enumerate(ran) if x.grad_norm_median > 0]
    if not live:
        return []
    return [x for x in ran[: live[-1]] if x.grad_norm_median == 0 and x.grad_norm_last == 0]


def _layer_name(name: str) -> str:
    return name or "(model)"


# ---------------------------------------------------------------- the training probe
@rule(
    "vanishing-gradients",
    "Gradients shrink by orders of magnitude towards the input",
    reads=["health"],
    thresholds={"health.vanishing_ratio": 1e-3, "health.min_layers": 3},
    doc="Relative gradient ||g||/||w|| of the first layer over that of the last layer, at "
    "the first probe step; or layers whose gradient is exactly zero at every step while a "
    "layer nearer the output has one. Early layers then barely (or never) learn.",
)
def vanishing_gradients(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    probe = _probe(report)
    if probe is None:
        return []
    blocked = _no_gradient(probe)
    if blocked:
        return [
            Finding(
                rule="vanishing-gradients",
                severity="warning",
                title=f"No gradient reaches {len(blocked)} layer(s), from "
                f"{_layer_name(blocked[0].name)}: their gradient is exactly zero at every step",
                evidence=evidence(
                    layers=", ".join(_layer_name(x.name) for x in blocked[:12]),
                    steps=probe.steps_run,
                ),
                recommendation="Something between these layers and the loss passes no "
                "gradient: dead ReLUs (see that finding), a detach(), an argmax/round, or a "
                "branch whose output is unused.",
                snippet="for name, p in model.named_parameters():\n"
                "    print(name, None if p.grad is None else p.grad.norm())",
                target=blocked[0].name,
            )
        ]
    path = _gradient_path(probe)
    if len(path) < th["health.min_layers"]:
        return []
    first, last = path[0], path[-1]
    ratio = first.relative_grad / last.relative_grad
    if ratio >= th["health.vanishing_ratio"]:
        return []
    return [
        Finding(
            rule="vanishing-gradients",
            severity="warning",
            title=f"Vanishing gradients: the first layer's relative gradient is {ratio:.1e} "
            f"of the last layer's",
            evidence=evidence(
                first_layer=_layer_name(first.name),
                first_relative_grad=f"{first.relative_grad:.3e}",
                last_layer=_layer_name(last.name),
                last_relative_grad=f"{last.relative_grad:.3e}",
                ratio=f"{ratio:.3e}",
                layers=len(path),
            ),
            recommendation="Use non-saturating activations (ReLU/GELU), normalisation "
            "(BatchNorm/LayerNorm), residual connections, and an init matched to the "
            "activation (Kaiming for ReLU).",
            snippet="nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')\n"
            "# or: x = x + block(norm(x))  (residual + normalisation)",
            target=first.name,
        )
    ]


@rule(
    "exploding-gradients",
    "Gradients grow by orders of magnitude towards the input, over the steps, or to NaN/inf",
    reads=["health"],
    thresholds={
        "health.exploding_ratio": 1e3,
        "health.grad_growth": 1e3,
        "health.grad_norm_high": 1e3,
    },
    doc="A gradient that is not finite; or the relative gradient of the first layer over the "
    "last above health.exploding_ratio; or a global gradient norm above "
    "health.grad_norm_high at the first step (healthy models measure ~0.1 to ~50); or the "
    "global norm at the last step over the first above health.grad_growth.",
)
def exploding_gradients(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    probe = _probe(report)
    if probe is None:
        return []
    bad = [layer for layer in probe.layers if layer.nonfinite_grad_step is not None]
    if bad:
        first = min(bad, key=lambda layer: layer.nonfinite_grad_step)
        return [
            _exploding(
                "critical",
                f"Exploding gradients: the gradient of {_layer_name(first.name)} is NaN/inf at "
                f"step {first.nonfinite_grad_step}",
                evidence(
                    layers=", ".join(_layer_name(b.name) for b in bad[:8]),
                    step=first.nonfinite_grad_step,
                ),
                first.name,
            )
        ]
    path = _gradient_path(probe)
    if len(path) >= 2:
        ratio = path[0].relative_grad / path[-1].relative_grad
        if ratio > th["health.exploding_ratio"]:
            return [
                _exploding(
                    "warning",
                    f"Exploding gradients: the first layer's relative gradient is {ratio:.1e} "
                    "times the last layer's",
                    evidence(
                        first_layer=_layer_name(path[0].name),
                        first_relative_grad=f"{path[0].relative_grad:.3e}",
                        last_layer=_layer_name(path[-1].name),
                        last_relative_grad=f"{path[-1].relative_grad:.3e}",
                        ratio=f"{ratio:.3e}",
                    ),
                    path[0].name,
                )
            ]
    first, last = probe.grad_total_first, probe.grad_total_last
    if finite(first) and first > th["health.grad_norm_high"]:
        top = max(probe.layers, key=lambda x: x.grad_norm_first or 0.0)
        return [
            _exploding(
                "warning",
                f"Exploding gradients: the global gradient norm is {first:.3g} at the first step",
                evidence(
                    grad_norm_first=f"{first:.3e}",
                    largest_layer=f"{_layer_name(top.name)} {top.grad_norm_first:.3e}",
                    threshold=th["health.grad_norm_high"],
                ),
                top.name,
            )
        ]
    if finite(first) and finite(last) and first > 0 and last / first > th["health.grad_growth"]:
        return [
            _exploding(
                "warning",
                f"Exploding gradients: the gradient norm grew {last / first:.1e}x over "
                f"{probe.steps_run} steps",
                evidence(grad_norm_first=f"{first:.3e}", grad_norm_last=f"{last:.3e}"),
                None,
            )
        ]
    return []


def _sites_over(
    report: Report, share: str, limit: float
) -> tuple[list[ActivationHealth], ActivationHealth | None]:
    """Activation call sites whose `share` (a fraction) is above `limit`, in the probe's
    order, and the worst of them."""
    probe = _probe(report)
    sites = [
        a
        for a in (probe.activations if probe else [])
        if getattr(a, share) is not None and getattr(a, share) > limit
    ]
    return sites, max(sites, key=lambda a: getattr(a, share), default=None)


def _exploding(severity: str, title: str, ev: dict, target: str | None) -> Finding:
    return Finding(
        rule="exploding-gradients",
        severity=severity,
        title=title,
        evidence=ev,
        recommendation="Scale the initial weights down (Xavier/Kaiming init), add "
        "normalisation, lower the learning rate, and clip the gradient norm.",
        snippet="torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
        "nn.init.xavier_uniform_(layer.weight)",
        target=target,
    )


@rule(
    "dead-relu",
    "ReLU outputs that are almost all zero",
    reads=["health"],
    thresholds={"health.dead_relu_fraction": 0.9},
    doc="Share of exact zeros after a ReLU-like call over the probe steps; such units pass "
    "no gradient and stop learning.",
)
def dead_relu(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    limit = th["health.dead_relu_fraction"]
    dead, worst = _sites_over(report, "zero_fraction", limit)
    if worst is None:
        return []
    return [
        Finding(
            rule="dead-relu",
            severity="warning",
            title=f"Dead ReLUs: {100 * worst.zero_fraction:.1f}% of the outputs of "
            f"{worst.name} are zero" + (f" (and {len(dead) - 1} more)" if len(dead) > 1 else ""),
            evidence=evidence(
                sites=", ".join(f"{a.name} {100 * a.zero_fraction:.1f}%" for a in dead[:8]),
                units_dead_for_every_sample=f"{100 * worst.dead_fraction:.1f}%"
                if worst.dead_fraction is not None
                else None,
                threshold=f"{100 * limit:.0f}%",
            ),
            recommendation="Check the biases and init before these units (large negative "
            "biases kill them), lower the learning rate, or use LeakyReLU/GELU.",
            snippet="nn.init.zeros_(layer.bias)\nact = nn.LeakyReLU(0.01)  # or nn.GELU()",
            target=worst.name,
        )
    ]


@rule(
    "saturated-activations",
    "Sigmoid or tanh outputs stuck near their limits",
    reads=["health"],
    thresholds={"health.saturated_fraction": 0.5},
    doc="Share of sigmoid outputs outside [0.01, 0.99] or tanh outputs with |y| > 0.99; "
    "their derivative is below ~0.01, so little gradient passes.",
)
def saturated_activations(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    limit = th["health.saturated_fraction"]
    hit, worst = _sites_over(report, "saturated_fraction", limit)
    if worst is None:
        return []
    return [
        Finding(
            rule="saturated-activations",
            severity="warning",
            title=f"Saturated {worst.op}: {100 * worst.saturated_fraction:.1f}% of the outputs "
            f"of {worst.name} are at its limits",
            evidence=evidence(
                sites=", ".join(f"{a.name} {100 * a.saturated_fraction:.1f}%" for a in hit[:8]),
                threshold=f"{100 * limit:.0f}%",
            ),
            recommendation="Normalise the inputs of the activation (LayerNorm/BatchNorm), "
            "scale the init down, or use ReLU/GELU in hidden layers.",
            snippet="x = torch.tanh(norm(linear(x)))  # norm = nn.LayerNorm(features)",
            target=worst.name,
        )
    ]


@rule(
    "update-ratio",
    "Update-to-weight ratio far from ~1e-3",
    reads=["health"],
    thresholds={"health.update_ratio_low": 1e-5, "health.update_ratio_high": 1e-1},
    doc="Median over the probe steps of ||w_after - w_before|| / ||w|| per layer. Far below "
    "1e-3 the layer barely learns (learning rate too low); far above it the weights churn.",
)
def update_ratio(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    probe = _probe(report)
    if probe is None:
        return []
    low, high = th["health.update_ratio_low"], th["health.update_ratio_high"]
    # A layer with no gradient at all is not moved by any learning rate: the
    # vanishing-gradients finding names it instead.
    rated = [
        layer
        for layer in probe.layers
        if finite(layer.update_ratio) and (layer.grad_norm_median or 0) > 0
    ]
    findings = []
    for side, layers in (
        ("high", [x for x in rated if x.update_ratio > high]),
        ("low", [x for x in rated if x.update_ratio < low]),
    ):
        if not layers:
            continue
        worst = (max if side == "high" else min)(layers, key=lambda x: x.update_ratio)
        findings.append(
            Finding(
                rule="update-ratio",
                severity="warning" if side == "high" else "info",
                title=f"Update-to-weight ratio too {side}: {worst.update_ratio:.1e} in "
                f"{_layer_name(worst.name)} with {probe.optimizer} lr {probe.lr:g}",
                evidence=evidence(
                    layers=", ".join(
                        f"{_layer_name(x.name)} {x.update_ratio:.1e}" for x in layers[:8]
                    ),
                    optimizer=probe.optimizer,
                    lr=probe.lr,
                    healthy_range=f"{low:g} to {high:g} (about 1e-3)",
                ),
                recommendation=(
                    "Lower the learning rate (or use warm-up): each step rewrites a large "
                    "part of these weights."
                    if side == "high"
                    else "Raise the learning rate for these layers, or check that their "
                    "gradient is not vanishing."
                ),
                snippet="optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)",
                target=worst.name,
            )
        )
    return findings


@rule(
    "loss-not-falling",
    "The probe's loss does not fall, or diverges",
    reads=["health"],
    thresholds={"health.loss_min_drop": 0.01, "health.loss_divergence_factor": 2.0},
    doc="Over N steps on one fixed batch a model that can learn lowers its loss. Compares "
    "the mean of the first 3 losses with the mean of the last 3.",
)
def loss_not_falling(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    probe = _probe(report)
    if probe is None or not probe.losses:
        return []
    losses = probe.losses
    if any(not finite(v) for v in losses):
        step = next(i for i, v in enumerate(losses) if not finite(v))
        return [_loss_finding("critical", f"The loss became NaN/inf at step {step}", probe)]
    if len(losses) < 5:
        return []
    k = min(3, len(losses) // 2)
    first, last = statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])
    if abs(first) < 1e-8:
        return []
    if last > first * th["health.loss_divergence_factor"] and first > 0:
        return [_loss_finding("critical", f"The loss diverges: {first:.4g} → {last:.4g}", probe)]
    drop = (first - last) / abs(first)
    if drop < th["health.loss_min_drop"]:
        return [
            _loss_finding(
                "warning",
                f"The loss does not fall: {first:.4g} → {last:.4g} over {len(losses)} steps",
                probe,
            )
        ]
    return []


def _loss_finding(severity: str, title: str, probe: TrainingProbe) -> Finding:
    shown = [round(v, 5) if finite(v) else None for v in probe.losses]
    return Finding(
        rule="loss-not-falling",
        severity=severity,
        title=title,
        evidence=evidence(
            losses=shown if len(shown) <= 12 else shown[:6] + ["…"] + shown[-5:],
            optimizer=probe.optimizer,
            lr=probe.lr,
            loss=probe.loss_source,
        ),
        recommendation="On one fixed batch the loss should fall fast. If it diverges, "
        "lower the learning rate; if it is flat, raise it, and check that the loss reaches "
        "the parameters (detach, frozen layers, wrong targets).",
        snippet="perfreport model.py --only health --compare-optimizers --train-steps 50",
    )


@rule(
    "nan-inf",
    "NaN or inf in activations, gradients or the loss during training",
    reads=["health"],
    doc="Names the first module whose output held NaN/inf (innermost first) and the first "
    "layer whose gradient did.",
)
def nan_inf(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    probe = _probe(report)
    if probe is None or not probe.nonfinite:
        return []
    first = next((n for n in probe.nonfinite if n.kind != "loss"), probe.nonfinite[0])
    where = f" in {_layer_name(first.module)}" if first.kind != "loss" else ""
    return [
        Finding(
            rule="nan-inf",
            severity="critical",
            title=f"NaN/inf in the {first.kind}{where} at step {first.step}",
            evidence=evidence(
                **{
                    f"{n.kind}": f"{_layer_name(n.module)} at step {n.step}"
                    for n in probe.nonfinite
                }
            ),
            recommendation="Look at the named module: log of 0, division by a small number, "
            "overflow in float16, or a learning rate so high the weights blow up.",
            snippet="torch.autograd.set_detect_anomaly(True)  # names the op in backward",
            target=first.module if first.kind != "loss" else None,
        )
    ]


# ---------------------------------------------------------------- TensorBoard curves
def _curve_name(c: ScalarCurve) -> str:
    return c.tag if c.run == "." else f"{c.run}/{c.tag}"


def _is_loss(c: ScalarCurve) -> bool:
    return "loss" in c.tag.lower()


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def _is_validation(c: ScalarCurve) -> bool:
    return any(w in VALIDATION_WORDS for w in _words(c.run) + _words(c.tag))


def _pair_key(c: ScalarCurve) -> str:
    words = [w for w in _words(c.tag) if w not in VALIDATION_WORDS + ("train", "training")]
    return " ".join(words)


def _points(c: ScalarCurve) -> list[tuple[int, float]]:
    return [(s, v) for s, v in zip(c.steps, c.values, strict=False) if finite(v)]


def _curves(report: Report) -> list[ScalarCurve]:
    logs = report.health.logs if report.health else None
    return logs.curves if logs else []


@rule(
    "curve-nan",
    "NaN or inf in a logged training curve",
    reads=["health"],
    doc="Any non-finite point in a TensorBoard scalar.",
)
def curve_nan(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    bad = [c for c in _curves(report) if c.nonfinite_steps]
    if not bad:
        return []
    first = min(bad, key=lambda c: c.nonfinite_steps[0])
    return [
        Finding(
            rule="curve-nan",
            severity="critical",
            title=f"NaN/inf in the logged curve {first.tag} from step {first.nonfinite_steps[0]}",
            evidence=evidence(
                curves=", ".join(f"{c.run}/{c.tag} ({len(c.nonfinite_steps)} points)" for c in bad),
                first_step=first.nonfinite_steps[0],
            ),
            recommendation="Training broke down at that step: lower the learning rate, clip "
            "gradients, or check the data and mixed-precision scaling around it.",
            snippet="torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)",
        )
    ]


@rule(
    "overfitting",
    "Validation loss rises while training loss falls",
    reads=["health"],
    thresholds={"health.overfit_rise": 0.1},
    doc="The validation loss ends more than health.overfit_rise above its minimum while the "
    "training loss at the end is below its value at that minimum.",
)
def overfitting(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    curves = [c for c in _curves(report) if _is_loss(c)]
    train = {_pair_key(c): c for c in curves if not _is_validation(c)}
    findings = []
    for val in (c for c in curves if _is_validation(c)):
        tr = train.get(_pair_key(val)) or (next(iter(train.values())) if len(train) == 1 else None)
        vp, tp = _points(val), _points(tr) if tr else []
        if tr is None or len(vp) < 3 or len(tp) < 3:
            continue
        best_step, best = min(vp, key=lambda p: p[1])
        end_step, end = vp[-1]
        if best_step == end_step or end <= best * (1 + th["health.overfit_rise"]):
            continue
        train_then = _value_at(tp, best_step)
        train_end = tp[-1][1]
        if train_end >= train_then:
            continue
        findings.append(
            Finding(
                rule="overfitting",
                severity="warning",
                title=f"Overfitting: {_curve_name(val)} rose {100 * (end / best - 1):.0f}% "
                f"after step {best_step} while {_curve_name(tr)} kept falling",
                evidence=evidence(
                    validation=_curve_name(val),
                    training=_curve_name(tr),
                    best_validation_step=best_step,
                    best_validation_loss=f"{best:.4g}",
                    last_validation_loss=f"{end:.4g}",
                    training_loss_then=f"{train_then:.4g}",
                    training_loss_last=f"{train_end:.4g}",
                ),
                recommendation=f"Keep the checkpoint from step {best_step} (early stopping), "
                "add regularisation (weight decay, dropout, augmentation) or more data.",
                snippet="optimizer = torch.optim.AdamW(model.parameters(), lr=lr, "
                "weight_decay=0.05)",
            )
        )
    return findings


def _value_at(points: list[tuple[int, float]], step: int) -> float:
    """The last value logged at or before `step` (the first one if none is)."""
    before = [v for s, v in points if s <= step]
    return before[-1] if before else points[0][1]


@rule(
    "not-converging",
    "Logged training loss that barely falls",
    reads=["health"],
    thresholds={"health.curve_min_drop": 0.1, "health.curve_min_points": 10},
    doc="Mean of the last 10% of a training loss curve over the mean of its first 10%.",
)
def not_converging(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    findings = []
    for c in _curves(report):
        pts = _points(c)
        if not _is_loss(c) or _is_validation(c) or len(pts) < th["health.curve_min_points"]:
            continue
        k = max(1, len(pts) // 10)
        first = statistics.fmean(v for _, v in pts[:k])
        last = statistics.fmean(v for _, v in pts[-k:])
        if first <= 0 or (first - last) / first >= th["health.curve_min_drop"]:
            continue
        findings.append(
            Finding(
                rule="not-converging",
                severity="warning",
                title=f"Not converging: {_curve_name(c)} fell {100 * (first - last) / first:.1f}% over "
                f"{len(pts)} logged points",
                evidence=evidence(
                    curve=_curve_name(c),
                    first_10pct_mean=f"{first:.4g}",
                    last_10pct_mean=f"{last:.4g}",
                    steps=f"{pts[0][0]} to {pts[-1][0]}",
                ),
                recommendation="Try a higher learning rate or a warm-up schedule, check that "
                "the targets match the outputs, and compare optimizers on a short run.",
                snippet="perfreport model.py --only health --compare-optimizers",
            )
        )
    return findings


@rule(
    "loss-spikes",
    "Sudden spikes in a logged loss",
    reads=["health"],
    thresholds={"health.spike_factor": 3.0, "health.spike_window": 10},
    doc="A point more than health.spike_factor times the median of the preceding "
    "health.spike_window points.",
)
def loss_spikes(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    window, factor = int(th["health.spike_window"]), th["health.spike_factor"]
    findings = []
    for c in _curves(report):
        if not _is_loss(c):
            continue
        pts = _points(c)
        spikes = [
            (s, v, med)
            for i, (s, v) in enumerate(pts)
            if i >= window
            and (med := statistics.median(x for _, x in pts[i - window : i])) > 0
            and v > factor * med
        ]
        if not spikes:
            continue
        step, value, med = max(spikes, key=lambda x: x[1] / x[2])
        findings.append(
            Finding(
                rule="loss-spikes",
                severity="warning",
                title=f"Loss spikes: {len(spikes)} in {_curve_name(c)}, the largest {value / med:.1f}x "
                f"the recent median at step {step}",
                evidence=evidence(
                    curve=_curve_name(c),
                    spike_steps=", ".join(str(s) for s, _, _ in spikes[:10]),
                    largest=f"{value:.4g} vs median {med:.4g}",
                ),
                recommendation="Lower the learning rate or add warm-up, clip the gradient "
                "norm, and look for bad batches at those steps.",
                snippet="torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)",
            )
        )
    return findings
