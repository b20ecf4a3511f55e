"""Sections written by the static stages: summary (torchinfo), flops and memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reporter.report.memory_timeline import MemoryTimeline


@dataclass
class LayerRow:
    """One row of torchinfo's per-layer table."""

    name: str  # qualified module name; "" is the model itself
    type: str
    depth: int
    output_shape: Any  # list of ints, or nested lists for several outputs
    params: int  # parameters torchinfo attributes to this row (its own, not recursive)
    trainable: str  # "yes", "no", "partial", or "" when the row holds no parameters
    is_leaf: bool
    dims: list[int] = field(default_factory=list)  # in/out features or channels, if any


@dataclass
class SummarySection:
    depth: int
    layers: list[LayerRow] = field(default_factory=list)
    torchinfo_version: str = ""
    torchinfo_total_params: int = 0  # what torchinfo reports; counts tied tensors twice
    outputs: list[Any] = field(default_factory=list)  # TensorSpec-like dicts of the output
    final_op: str = ""  # the last computing op of the forward, e.g. "aten._log_softmax"
    forward_warnings: list[str] = field(default_factory=list)  # warnings the forward raised
    train_mode_modules: list[str] = field(
        default_factory=list
    )  # modules whose output changes in train mode, when the model was built in it
    train_mode_types: dict[str, int] = field(default_factory=dict)  # class -> modules
    train_mode_same: int = 0  # modules that read .training but compute the same either way
    # Conv -> BatchNorm pairs foldable at inference; None when not determined
    conv_bn_pairs: list[list[str]] | None = None
    loss_fn_given: bool = False  # the model file defines loss_fn(output, inputs)
    output_nonfinite: int = 0  # NaN or Inf elements in the output
    method: str = ""


@dataclass
class ModuleFlops:
    name: str  # qualified module name; "" is the whole model
    type: str
    depth: int
    forward: int
    backward: int | None = None
    share: float = 0.0  # of the forward total


@dataclass
class OpCount:
    op: str
    calls: int
    flops: int = 0


@dataclass
class FlopsSection:
    forward_total: int
    backward_total: int | None = None  # from a forward+backward pass, when one was run
    by_module: list[ModuleFlops] = field(default_factory=list)
    by_op: list[OpCount] = field(default_factory=list)
    uncounted_ops: list[OpCount] = field(default_factory=list)  # ran, computes, no formula
    backward_note: str = ""  # e.g. backward counted on an eval-mode pass, and why
    method: str = ""
    # The totals with causal or masked attention (SDPA kernels) counted over the
    # query-key pairs let through only; None when no such kernel ran. The totals above
    # count every pair (S x S), as FlopCounterMode does.
    forward_causal_total: int | None = None
    backward_causal_total: int | None = None
    causal_ops: list[str] = field(default_factory=list)  # the kernels that were


@dataclass
class TrainingMemory:
    saved_activation_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: dict[str, int] = field(default_factory=dict)
    total_bytes: dict[str, int] = field(default_factory=dict)  # by optimizer
    peak_forward_bytes: int = 0  # live tensors during the grad-enabled forward
    params_without_grad: list[str] = field(
        default_factory=list
    )  # trainable, no grad after backward
    loss_ops: list[str] = field(default_factory=list)  # ops that computed the loss
    softmax_twice: bool = False  # the loss (log-)softmaxes the model's (log-)softmax output
    # "eval" when the training pass raised in train mode (a detection model without
    # targets) and its figures come from an eval-mode pass; mode_note says why
    mode: str = "train"
    mode_note: str = ""
    params_not_read: list[str] = field(default_factory=list)  # never read by the forward


@dataclass
class FitRow:
    """Memory one scenario needs, whole and split across tensor-parallel devices."""

    scenario: str
    bytes: int
    per_device: dict[str, int] = field(default_factory=dict)  # TP degree ("1".."8") -> bytes


@dataclass
class MemorySection:
    parameter_bytes: int
    buffer_bytes: int
    input_bytes: int
    output_bytes: int
    inference_activation_peak_bytes: int
    inference_total_bytes: int
    training: TrainingMemory | None = None
    fits: list[FitRow] = field(default_factory=list)
    device_sizes_gib: list[int] = field(default_factory=list)
    method: str = ""
    timeline: MemoryTimeline | None = None  # --train: one training step over time
