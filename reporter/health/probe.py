"""The training probe: N real optimizer steps on a copy of the model, instrumented.

Per layer (a module that owns parameters directly): gradient norm, weight norm and the
update-to-weight ratio. Per ReLU/sigmoid/tanh call site: zero and saturation shares, caught
by a TorchFunctionMode so functional calls (F.relu, x.sigmoid()) count as well as modules.
The first module whose output or gradient holds NaN/inf is named.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from reporter.health.training import LossFn, make_optimizer, trainable
from reporter.report.health import (
    ActivationHealth,
    Histogram,
    LayerHealth,
    LayerHistograms,
    NonFinite,
    TrainingProbe,
)
from reporter.tensors import tensors_in

RELU_OPS = {"relu", "relu_", "relu6"}
SATURATING_OPS = {"sigmoid", "sigmoid_", "tanh", "tanh_"}
# Modules whose forward is one activation call: the call site takes the module's name.
ACTIVATION_MODULES = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Sigmoid, torch.nn.Tanh)
HISTOGRAM_LAYERS = 3
HISTOGRAM_BINS = 30
HISTOGRAM_SAMPLE = 200_000


@dataclass
class _SiteStats:
    op: str
    numel: int = 0
    zeros: int = 0
    dead_units: int = 0
    units: int = 0
    saturated: int = 0


@dataclass
class _Watch:
    """Forward state shared by the hooks and the function mode."""

    stack: list[str] = field(default_factory=list)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)  # per forward
    sites: dict[str, _SiteStats] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # modules in first-run order
    types: dict[str, type] = field(default_factory=dict)
    step: int = 0
    check_nonfinite: bool = False  # only on the diagnostic pass after a non-finite loss
    nonfinite_activation: NonFinite | None = None


class _ActivationMode(TorchFunctionMode):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if (name in RELU_OPS or name in SATURATING_OPS) and isinstance(out, torch.Tensor):
            _record_site(self.watch, name.rstrip("_"), out)
        return out


def _record_site(watch: _Watch, op: str, out: torch.Tensor) -> None:
    module = watch.stack[-1] if watch.stack else ""
    key = (module, op)
    watch.calls[key] = watch.calls.get(key, 0) + 1
    if issubclass(watch.types.get(module, object), ACTIVATION_MODULES):
        label = module
    else:
        label = f"{module or '(root)'}.{op}#{watch.calls[key]}"
    stats = watch.sites.setdefault(label, _SiteStats(op=op))
    y = out.detach()
    stats.numel += y.numel()
    if op in RELU_OPS:
        zero = y == 0
        stats.zeros += int(zero.sum())
        if y.dim() >= 2:  # dim 0 is the batch: a unit is dead if zero for every sample
            stats.dead_units += int(zero.all(dim=0).sum())
            stats.units += y[0].numel()
    elif op == "sigmoid":
        stats.saturated += int(((y < 0.01) | (y > 0.99)).sum())
    else:  # tanh
        stats.saturated += int((y.abs() > 0.99).sum())


def _install_hooks(model: torch.nn.Module, watch: _Watch) -> list[Any]:
    handles = []
    seen: set[str] = set()
    for name, module in model.named_modules():
        watch.types[name] = type(module)

        def pre(mod: Any, args: Any, name: str = name) -> None:
            watch.stack.append(name)
            if name not in seen:
                seen.add(name)
                watch.order.append(name)

        def post(mod: Any, args: Any, output: Any, name: str = name) -> None:
            if watch.stack and watch.stack[-1] == name:
                watch.stack.pop()
            # Post-hooks fire innermost first, so the first hit is where NaN/inf appeared.
            if (
                watch.check_nonfinite
                and watch.nonfinite_activation is None
                and _has_nonfinite(output)
            ):
                watch.nonfinite_activation = NonFinite("activation", name, watch.step)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    return handles


def _locate_nonfinite(model: torch.nn.Module, call: Any, watch: _Watch) -> None:
    """Re-run the forward of the failing step with the NaN/inf check on (same weights).

    Checking every module's output on every step costs a pass over each activation, so the
    check runs only once the loss has gone non-finite.
    """
    watch.check_nonfinite, watch.stack = True, []
    try:
        with torch.no_grad():
            call(model)
    finally:
        watch.check_nonfinite = False


def _has_nonfinite(output: Any) -> bool:
    return any(
        t.is_floating_point() and not bool(torch.isfinite(t.detach()).all())
        for t in tensors_in(output)
    )


def _group_by_module(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    groups: dict[str, list[torch.nn.Parameter]] = {}
    for name, p in trainable(model):
        module = name.rsplit(".", 1)[0] if "." in name else ""
        groups.setdefault(module, []).append(p)
    return groups


def _norm(tensors: list[torch.Tensor]) -> float:
    """L2 norm of several tensors taken together.

    float32 is several times faster than float64 here; only a norm that overflows float32
    is recomputed in float64, so exploding weights still get a finite figure.
    """
    norms = torch.stack([torch.linalg.vector_norm(t.detach()).float() for t in tensors])
    total = float(torch.linalg.vector_norm(norms))
    if math.isinf(total):
        total = float(
            torch.linalg.vector_norm(
                torch.stack(
                    [torch.linalg.vector_norm(t.detach(), dtype=torch.float64) for t in tensors]
                )
            )
        )
    return total


def run_probe(
    model: torch.nn.Module,
    call: Any,
    loss: LossFn,
    *,
    optimizer: str,
    lr: float,
    steps: int,
    seed: int,
    loss_source: str,
    time_budget: float | None = None,
) -> TrainingProbe:
    """Train `model` in place for `steps` steps (give it a copy) and record its health.

    `call(model)` runs one forward on the sample inputs; `loss(output)` is the objective.
    With `time_budget` (seconds), stop once it is spent. One step still gives every
    per-layer figure; only the loss-trend finding needs several, and it says so.
    """
    torch.manual_seed(seed)
    model.train()
    groups = _group_by_module(model)
    params = [p for ps in groups.values() for p in ps]
    # The first optimizer of a process imports torch._dynamo (seconds): keep that one-off
    # cost out of the time budget, which is there for the steps.
    opt = make_optimizer(optimizer, params, lr)
    opt.zero_grad(set_to_none=True)
    start = time.perf_counter()
    weight_norms = {m: _norm(ps) for m, ps in groups.items()}
    grad_norms: dict[str, list[float]] = {m: [] for m in groups}
    ratios: dict[str, list[float]] = {m: [] for m in groups}
    nonfinite_grad: dict[str, int] = {}
    watch = _Watch()
    probe = TrainingProbe(
        optimizer=optimizer, lr=lr, steps=steps, steps_run=0, loss_source=loss_source
    )
    handles = _install_hooks(model, watch)
    try:
        for step in range(steps):
            watch.step, watch.calls, watch.stack = step, {}, []
            opt.zero_grad(set_to_none=True)
            with _ActivationMode(watch):
                value = loss(call(model))
            probe.losses.append(float(value.detach()))
            probe.steps_run = step + 1
            if not torch.isfinite(value):
                probe.nonfinite.append(NonFinite("loss", "", step))
                _locate_nonfinite(model, call, watch)
                break
            value.backward()
            for m, ps in groups.items():
                grads = [p.grad for p in ps if p.grad is not None]
                if not grads:
                    continue
                g = _norm(grads)
                grad_norms[m].append(g)
                if not math.isfinite(g) and m not in nonfinite_grad:
                    nonfinite_grad[m] = step
            before = [p.detach().clone() for p in params]
            opt.step()
            _record_updates(groups, params, before, ratios)
            spent = time.perf_counter() - start
            if time_budget is not None and spent > time_budget:
                if step + 1 < steps:
                    probe.stopped_early = (
                        f"stopped after {step + 1} of {steps} steps: the default probe's "
                        f"{time_budget:g} s budget was spent; give --train-steps N to run N"
                    )
                break
    finally:
        for h in handles:
            h.remove()
    order = {name: i for i, name in enumerate(watch.order)}
    modules = dict(model.named_modules())
    for m in sorted(groups, key=lambda m: order.get(m, len(order))):
        ps, gs = groups[m], grad_norms[m]
        w = weight_norms[m]
        probe.layers.append(
            LayerHealth(
                name=m,
                type=type(modules[m]).__name__,
                params=sum(p.numel() for p in ps),
                weight_norm=w,
                grad_norm_first=gs[0] if gs else None,
                grad_norm_last=gs[-1] if gs else None,
                grad_norm_median=statistics.median(gs) if gs else None,
                update_ratio=statistics.median(ratios[m]) if ratios[m] else None,
                relative_grad=gs[0] / w if gs and w > 0 else None,
                nonfinite_grad_step=nonfinite_grad.get(m),
            )
        )
    if watch.nonfinite_activation is not None:
        probe.nonfinite.insert(0, watch.nonfinite_activation)
    if nonfinite_grad:
        # Backward runs from the output: the layer latest in forward order is hit first.
        first_step = min(nonfinite_grad.values())
        hit = [layer.name for layer in probe.layers if nonfinite_grad.get(layer.name) == first_step]
        probe.nonfinite.append(NonFinite("gradient", hit[-1], first_step))
    probe.activations = [_site_health(name, s) for name, s in watch.sites.items()]
    probe.histograms = _histograms(groups)
    last_grads = [p.grad for p in params if p.grad is not None]  # of the last step
    probe.grad_total_last = _norm(last_grads) if last_grads else None
    firsts = [layer.grad_norm_first for layer in probe.layers if layer.grad_norm_first is not None]
    probe.grad_total_first = float(sum(g * g for g in firsts) ** 0.5) if firsts else None
    probe.seconds = round(time.perf_counter() - start, 4)
    return probe


def _record_updates(
    groups: dict[str, list[torch.nn.Parameter]],
    params: list[torch.nn.Parameter],
    before: list[torch.Tensor],
    ratios: dict[str, list[float]],
) -> None:
    old = {id(p): b for p, b in zip(params, before, strict=True)}
    for m, ps in groups.items():
        if all(p.grad is None for p in ps):
            continue
        w = _norm([old[id(p)] for p in ps])
        if w > 0:
            ratios[m].append(_norm([p.detach() - old[id(p)] for p in ps]) / w)


def _site_health(name: str, s: _SiteStats) -> ActivationHealth:
    health = ActivationHealth(name=name, op=s.op, numel=s.numel)
    if s.op in RELU_OPS and s.numel:
        health.zero_fraction = s.zeros / s.numel
        health.dead_fraction = s.dead_units / s.units if s.units else None
    elif s.numel:
        health.saturated_fraction = s.saturated / s.numel
    return health


def _histograms(groups: dict[str, list[torch.nn.Parameter]]) -> list[LayerHistograms]:
    largest = sorted(groups, key=lambda m: -sum(p.numel() for p in groups[m]))
    out = []
    for m in largest[:HISTOGRAM_LAYERS]:
        ps = groups[m]
        grads = [p.grad for p in ps if p.grad is not None]
        out.append(
            LayerHistograms(
                name=m,
                params=sum(p.numel() for p in ps),
                weights=histogram(ps),
                grads=histogram(grads) if grads else None,
            )
        )
    return out


def histogram(tensors: list[torch.Tensor], bins: int = HISTOGRAM_BINS) -> Histogram | None:
    """Counts of the finite values over `bins` equal bins from their min to their max.

    Above HISTOGRAM_SAMPLE values, every k-th value is counted (counts sum to the sample).
    """
    values = torch.cat([t.detach().reshape(-1) for t in tensors])
    if values.numel() > HISTOGRAM_SAMPLE:  # an even stride: the shape, at a fraction of the cost
        values = values[:: values.numel() // HISTOGRAM_SAMPLE + 1]
    values = values.float()
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(values, bins=bins, min=lo, max=hi)
    step = (hi - lo) / bins
    return Histogram(
        edges=[lo + i * step for i in range(bins + 1)], counts=[int(c) for c in counts]
    )
