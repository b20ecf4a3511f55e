"""Section written by the health stage (training health).

Non-finite values (NaN, inf) become ``None`` in JSON, so series are ``list[float | None]``
and readers treat ``None`` as "not finite".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LayerHealth:
    """One module that owns parameters directly, in the order the forward first ran it."""

    name: str  # qualified module name; "" is the model itself
    type: str
    params: int
    weight_norm: float  # L2 norm of the module's own parameters before the first step
    grad_norm_first: float | None = None  # L2 norm of their gradient at the first step
    grad_norm_last: float | None = None  # ... at the last step
    grad_norm_median: float | None = None  # median over the steps
    update_ratio: float | None = None  # median over steps of ||w_after - w_before|| / ||w||
    relative_grad: float | None = None  # grad_norm_first / weight_norm (scale-free)
    nonfinite_grad_step: int | None = None  # first step whose gradient held NaN/inf


@dataclass
class ActivationHealth:
    """Outputs of one ReLU-like, sigmoid or tanh call site, over all probe steps."""

    name: str  # module path plus op, e.g. "features.1" or "(root).relu#2"
    op: str  # "relu", "sigmoid", "tanh", ...
    numel: int  # elements seen over all steps
    zero_fraction: float | None = None  # ReLU-like: share of exact zeros
    dead_fraction: float | None = None  # ReLU-like: units zero for every sample of a step
    saturated_fraction: float | None = None  # sigmoid < 0.01 or > 0.99; |tanh| > 0.99


@dataclass
class Histogram:
    edges: list[float]  # len(counts) + 1
    counts: list[int]


@dataclass
class LayerHistograms:
    name: str
    params: int
    weights: Histogram | None = None  # after the last step
    grads: Histogram | None = None  # gradient of the last step


@dataclass
class NonFinite:
    kind: str  # "activation", "gradient" or "loss"
    module: str  # first module where it appeared ("" is the model itself)
    step: int


@dataclass
class TrainingProbe:
    optimizer: str
    lr: float
    steps: int  # steps asked for
    steps_run: int  # fewer when the loss stopped being finite
    loss_source: str  # "loss_fn" or the default that was used
    losses: list[float | None] = field(default_factory=list)
    layers: list[LayerHealth] = field(default_factory=list)
    activations: list[ActivationHealth] = field(default_factory=list)
    histograms: list[LayerHistograms] = field(default_factory=list)
    nonfinite: list[NonFinite] = field(default_factory=list)
    grad_total_first: float | None = None  # global gradient norm at the first step
    grad_total_last: float | None = None
    seconds: float = 0.0
    stopped_early: str = ""  # why fewer steps ran than asked, when the time budget ran out


@dataclass
class OptimizerRun:
    name: str  # "sgd", "sgd_momentum", "adam", "adamw"
    lr: float
    losses: list[float | None] = field(default_factory=list)
    drop: float | None = None  # (first - last) / |first|; None when not finite


@dataclass
class OptimizerComparison:
    steps: int
    runs: list[OptimizerRun] = field(default_factory=list)
    fastest: str | None = None  # largest drop
    statement: str = ""


@dataclass
class ScalarCurve:
    run: str  # folder of the event files, relative to the logdir ("." for the logdir itself)
    tag: str
    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    points: int = 0  # points in the event files (the lists may be thinned for the report)
    nonfinite_steps: list[int] = field(default_factory=list)  # every non-finite point


@dataclass
class TrainingLogs:
    logdir: str
    event_files: int = 0
    curves: list[ScalarCurve] = field(default_factory=list)


@dataclass
class EvalAccuracy:
    batches: int
    samples: int
    loss: float | None = None  # mean cross-entropy per sample (classifiers) or MSE
    loss_kind: str = ""
    top1: float | None = None
    top5: float | None = None  # None with fewer than 5 classes
    num_classes: int | None = None
    class_counts: list[int] = field(default_factory=list)
    per_class: list[float | None] = field(default_factory=list)  # None: class absent
    confusion: list[list[int]] = field(default_factory=list)  # [target][prediction]
    note: str = ""


@dataclass
class HealthSection:
    probe: TrainingProbe | None = None
    comparison: OptimizerComparison | None = None
    logs: TrainingLogs | None = None
    accuracy: EvalAccuracy | None = None
    method: str = ""
    notes: list[str] = field(default_factory=list)
