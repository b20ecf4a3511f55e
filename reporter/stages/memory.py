"""Memory stage: bytes of weights, activations at inference, and a training estimate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reporter.model_info import tensor_key
from reporter.report import FitRow, MemorySection, TrainingMemory
from reporter.report.memory_timeline import MemoryTimeline
from reporter.stages.context import StageContext
from reporter.stages.passes import (
    InferencePass,
    TrainingPass,
    inference_pass,
    training_pass,
)
from reporter.tensors import tensors_in

if TYPE_CHECKING:
    from reporter.profiling.memory_timeline import Counted

# Optimizer state per trainable parameter, in copies of the parameter.
OPTIMIZER_COPIES = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}

METHOD = (
    "Parameters and buffers: their unique tensors. Inference activation peak: the most "
    "bytes of tensors alive at once during one no_grad forward, tracked per storage by a "
    "dispatch mode. Training: bytes alive during one autograd forward in train mode "
    "(activations saved for backward included, dropout masks among them; modes and "
    "buffers restored afterwards) + one gradient per trainable parameter + optimizer state "
    "(Adam/AdamW: 2 copies of each trainable parameter, SGD with momentum: 1, SGD: 0). "
    "Allocator caching and backward's temporaries are not included."
)

META_METHOD = (
    " On the meta device the same passes run without data, on the same ops and tensor "
    "sizes as on the CPU, scaled_dot_product_attention included (the kernel the CPU "
    "would choose; flash holds no batch x heads x S x S scores and saves one logsumexp "
    "float per query row): the figures are what the CPU run measures."
)


def run(ctx: StageContext) -> MemorySection:
    model = ctx.subject.model
    params = {tensor_key(p): p for p in model.parameters()}
    param_bytes = sum(_bytes(p) for p in params.values())
    grad_bytes = sum(_bytes(p) for p in params.values() if p.requires_grad)
    buffer_bytes = sum(_bytes(b) for b in {tensor_key(b): b for b in model.buffers()}.values())
    input_bytes = _unique_bytes(tensors_in((ctx.subject.args, ctx.subject.kwargs)))
    forward = inference_pass(ctx)
    training = training_pass(ctx)
    optimizer = {name: copies * grad_bytes for name, copies in OPTIMIZER_COPIES.items()}
    base = param_bytes + buffer_bytes + input_bytes + grad_bytes + training.peak_forward_bytes
    section = MemorySection(
        parameter_bytes=param_bytes,
        buffer_bytes=buffer_bytes,
        input_bytes=input_bytes,
        output_bytes=_unique_bytes(tensors_in(forward.output)),
        inference_activation_peak_bytes=forward.activation_peak_bytes,
        inference_total_bytes=param_bytes
        + buffer_bytes
        + input_bytes
        + forward.activation_peak_bytes,
        training=TrainingMemory(
            saved_activation_bytes=training.saved_activation_bytes,
            gradient_bytes=grad_bytes,
            optimizer_state_bytes=optimizer,
            total_bytes={name: base + extra for name, extra in optimizer.items()},
            peak_forward_bytes=training.peak_forward_bytes,
            params_without_grad=training.params_without_grad,
            loss_ops=training.loss_ops,
            softmax_twice=training.softmax_twice,
            mode=training.mode,
            mode_note=training.note if training.mode == "eval" else "",
            params_not_read=training.params_not_read,
        ),
        fits=fit_rows(param_bytes, buffer_bytes + input_bytes, grad_bytes, forward, training),
        device_sizes_gib=list(DEVICE_SIZES_GIB),
        method=METHOD
        + FIT_METHOD
        + (META_METHOD if ctx.subject.device.type == "meta" else "")
        + (f" Note: {training.note}." if training.note else ""),
    )
    if ctx.options.train and ctx.subject.device.type != "meta":
        from reporter.profiling.memory_timeline import Counted

        trainable = sum(1 for p in params.values() if p.requires_grad)
        counted = Counted(param_bytes, grad_bytes, trainable, training.peak_forward_bytes)
        section.timeline = _timeline(ctx, counted)
    return section


def _timeline(ctx: StageContext, counted: Counted) -> MemoryTimeline | None:
    """--train: one training step's memory over time, from the profile stage's last step
    when it ran (the memory stage runs after it), else from a step recorded here; a failure
    leaves the estimate whole."""
    from reporter.profiling.memory_timeline import TRAINING_STEP, record_step, timeline_for

    try:
        record = ctx.cache.pop(TRAINING_STEP, None) or record_step(ctx.subject)
        return timeline_for(record, ctx.subject.device, counted)
    except Exception as exc:  # the timeline is extra: the estimate above stands without it
        ctx.subject.notes.append(f"memory timeline not recorded: {type(exc).__name__}: {exc}")
        return None


DEVICE_SIZES_GIB = (24, 40, 80, 141)
TP_DEGREES = (1, 2, 4, 8)
FIT_METHOD = (
    " What-fits table: AdamW keeps 2 state tensors per trainable parameter, SGD with "
    "momentum 1; bf16 autocast keeps fp32 weights, gradients and optimizer state and halves "
    "fp32 activations; a tensor-parallel degree k divides everything by k (an ideal split)."
)


def fit_rows(
    params: int, other: int, trainable: int, forward: InferencePass, training: TrainingPass
) -> list[FitRow]:
    """Memory per scenario at the sample input's batch size."""
    activations = training.peak_forward_bytes
    scenarios = {
        "Inference": params + other + forward.activation_peak_bytes,
        "Training, AdamW": params + other + trainable * 3 + activations,
        "Training, SGD with momentum": params + other + trainable * 2 + activations,
        "Training, AdamW + bf16 autocast": params + other + trainable * 3 + activations // 2,
    }
    return [
        FitRow(name, need, {str(k): -(-need // k) for k in TP_DEGREES})
        for name, need in scenarios.items()
    ]


def _bytes(t) -> int:  # noqa: ANN001
    return t.numel() * t.element_size()


def _unique_bytes(tensors: list) -> int:  # noqa: ANN001
    return sum(_bytes(t) for t in {tensor_key(t): t for t in tensors}.values())
