"""Experiments stage (--experiments): apply each automatic fix, time before and after.

The baseline is timed right before each variant in the same process with the same
method as the timing stage, so a speedup is never claimed without being measured; the
variant's outputs are compared with the baseline's within a stated tolerance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reporter.option_schema import default
from reporter.profiling.measure import measure
from reporter.profiling.stats import quantile
from reporter.profiling.sweep import batch_size, with_batch
from reporter.report.experiments import Experiment, ExperimentsSection
from reporter.stages import deployment_variants as dv
from reporter.stages.context import SkipStage, StageContext
from reporter.stages.deployment_variants import state_bytes
from reporter.tensors import tensors_in

METHOD = (
    "Each fix is applied to a copy of the model; baseline (eval, no_grad) and variant are "
    "timed one after the other with the timing stage's method (warm-up until stable, then "
    "blocked samples). Speedup = baseline median / variant median; the range uses the "
    "quartiles (baseline q1/variant q3 to baseline q3/variant q1). Outputs are compared on "
    "the sample input: the largest absolute difference must stay within the tolerance "
    "times the output's largest magnitude."
)


@dataclass
class Variant:
    name: str
    title: str
    snippet: str
    tolerance: float
    build: Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]
    applies: Callable[[StageContext], str]  # "" when it applies, else the reason it does not
    deployment: bool = False  # a precision or runtime to ship in: size and error reported


def run(ctx: StageContext) -> ExperimentsSection:
    if not ctx.options.stage_option("experiments", "enabled", False):
        raise SkipStage("pass --experiments to time each fix before and after")
    seconds = float(
        ctx.options.stage_option("experiments", "seconds", default("experiment_seconds"))
    )
    only = ctx.options.stage_option("experiments", "only") or []
    results = []
    for number, variant in enumerate(VARIANTS, 1):
        if only and variant.name not in only:
            continue
        ctx.progress(f"{variant.name} ({number} of {len(VARIANTS)})")
        reason = variant.applies(ctx)
        if reason:
            results.append(
                Experiment(
                    variant.name,
                    variant.title,
                    "skipped",
                    reason,
                    snippet=variant.snippet,
                    deployment=variant.deployment,
                )
            )
            continue
        try:
            results.append(_run_variant(ctx, variant, seconds))
        except Exception as exc:  # one failing fix must not hide the others
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            results.append(
                Experiment(
                    variant.name,
                    variant.title,
                    "failed",
                    f"{type(exc).__name__}: {first}"[:300],
                    snippet=variant.snippet,
                    deployment=variant.deployment,
                )
            )
    return ExperimentsSection(experiments=results, seconds_per_measurement=seconds, method=METHOD)


def _run_variant(ctx: StageContext, variant: Variant, seconds: float) -> Experiment:
    subject = ctx.subject
    model, args, kwargs = subject.model, subject.args, subject.kwargs
    baseline_fn = _caller(model, args, kwargs, torch.no_grad)
    reference = baseline_fn()
    variant_model, v_args, v_kwargs, context, per_sample = variant.build(
        copy.deepcopy(model), args, kwargs
    )
    variant_fn = _caller(variant_model, v_args, v_kwargs, context)
    result = variant_fn()
    before = measure(baseline_fn, subject.device, budget_s=seconds).samples_ms
    after = measure(variant_fn, subject.device, budget_s=seconds).samples_ms
    scale = per_sample  # batch experiments compare time per sample
    b = [x / scale[0] for x in before]
    a = [x / scale[1] for x in after]
    error, magnitude = _max_error(reference, result, per_sample)
    sized = variant.deployment or variant.name == "int8_dynamic"
    experiment = Experiment(
        name=variant.name,
        title=variant.title,
        status="measured",
        baseline_ms=quantile(before, 0.5),
        variant_ms=quantile(after, 0.5),
        speedup=quantile(b, 0.5) / quantile(a, 0.5),
        speedup_low=quantile(b, 0.25) / quantile(a, 0.75),
        speedup_high=quantile(b, 0.75) / quantile(a, 0.25),
        max_abs_error=error,
        tolerance=variant.tolerance,
        outputs_match=error is not None and error <= variant.tolerance * max(magnitude, 1e-12),
        size_before_bytes=state_bytes(model) if sized else None,
        size_after_bytes=state_bytes(variant_model) if sized else None,
        snippet=variant.snippet,
        baseline_samples_ms=before,
        variant_samples_ms=after,
        samples_per_call=list(per_sample),
        reason=f"after: batch {per_sample[1]} instead of {per_sample[0]}"
        if per_sample[0] != per_sample[1]
        else "",
        deployment=variant.deployment,
    )
    if variant.deployment:
        _judge_outputs(ctx, experiment, reference, result, variant_model, magnitude)
    if variant.name == "int4_weight_only":
        experiment.reason = dv.int4_coverage(model)  # the layers int4 groups do not fit
    return experiment


def _judge_outputs(
    ctx: StageContext,
    experiment: Experiment,
    reference: Any,
    result: Any,
    variant_model: Any,
    magnitude: float,
) -> None:
    """A deployment variant's error relative to the output's scale, its top-1 agreement,
    and its accuracy change on eval_batches() (the model's own accuracy evaluated once)."""
    if experiment.max_abs_error is not None and magnitude > 0:
        experiment.max_rel_error = experiment.max_abs_error / magnitude
    experiment.top1_agreement = dv.top1_agreement(reference, result)
    base = ctx.shared("eval_top1", lambda: dv.eval_top1(ctx.subject, ctx.subject.model))
    if base is not None:
        dtype = torch.bfloat16 if experiment.name == "bf16_cast" else None
        after = dv.eval_top1(ctx.subject, variant_model, dtype)
        experiment.accuracy_delta = None if after is None else after - base


def _caller(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    context: Callable[[], AbstractContextManager[Any]],
) -> Callable[[], Any]:
    def call() -> Any:
        with context():
            return model(*args, **kwargs)

    return call


def _max_error(
    reference: Any, result: Any, per_sample: tuple[int, int]
) -> tuple[float | None, float]:
    ref = [t for t in tensors_in(reference) if t.is_floating_point()]
    out = [t for t in tensors_in(result) if t.is_floating_point()]
    if not ref or len(ref) != len(out):
        return None, 0.0
    error, magnitude = 0.0, 0.0
    for r, o in zip(ref, out, strict=True):
        o = (
            o[: r.shape[0]] if per_sample[1] != per_sample[0] and o.dim() else o
        )  # first rows = same samples
        if r.shape != o.shape:
            return None, 0.0
        error = max(error, float((r.float() - o.float()).abs().max()))
        magnitude = max(magnitude, float(r.float().abs().max()))
    return error, magnitude


# ------------------------------------------------------------------ the fixes
def _same(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], context: Any = torch.no_grad
) -> Any:
    n = batch_size(args, kwargs)
    return model, args, kwargs, context, (n, n)


def _inference_mode(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(model, args, kwargs, torch.inference_mode)


def _channels_last(model, args, kwargs):  # noqa: ANN001, ANN202
    model = model.to(memory_format=torch.channels_last)
    args = tuple(a.contiguous(memory_format=torch.channels_last) if _is_4d(a) else a for a in args)
    return _same(model, args, kwargs)


def _bf16_autocast(model, args, kwargs):  # noqa: ANN001, ANN202
    device = next((p.device.type for p in model.parameters()), "cpu")

    def context() -> Any:
        return _stack(torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16))

    return _same(model, args, kwargs, context)


def _compile(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(torch.compile(model), args, kwargs)


def _double_batch(model, args, kwargs):  # noqa: ANN001, ANN202
    n = batch_size(args, kwargs)
    big_args, big_kwargs = with_batch(args, kwargs, 2 * n)
    return model, big_args, big_kwargs, torch.no_grad, (n, 2 * n)


def _int8_dynamic(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(dv.int8_dynamic(model), args, kwargs)


def _int8_weight_only(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(dv.int8_weight_only(model), args, kwargs)


def _int4_weight_only(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(dv.int4_weight_only(model), args, kwargs)


def _bf16_cast(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(*dv.bf16_cast(model, args, kwargs))


def _fp16_autocast(model, args, kwargs):  # noqa: ANN001, ANN202
    def context() -> Any:
        return _stack(torch.no_grad(), torch.autocast("cuda", dtype=torch.float16))

    return _same(model, args, kwargs, context)


def _onnxruntime(model, args, kwargs):  # noqa: ANN001, ANN202
    return _same(dv.onnxruntime_model(model, args, kwargs), args, kwargs)


def _cudnn_benchmark(model, args, kwargs):  # noqa: ANN001, ANN202
    def context() -> Any:
        return _stack(torch.no_grad(), _backend_flag(torch.backends.cudnn, "benchmark", True))

    return _same(model, args, kwargs, context)


def _tf32(model, args, kwargs):  # noqa: ANN001, ANN202
    def context() -> Any:
        return _stack(
            torch.no_grad(), _backend_flag(torch.backends.cuda.matmul, "allow_tf32", True)
        )

    return _same(model, args, kwargs, context)


def _bn_fold(model, args, kwargs):  # noqa: ANN001, ANN202
    """Each BatchNorm folded into the convolution before it (reporter/conv_bn.py)."""
    from reporter import conv_bn
    from reporter.graph.record import record

    model.eval()
    pairs = conv_bn.foldable_pairs(record(model, args, kwargs), model)
    return _same(conv_bn.fold(model, pairs), args, kwargs)


def _needs_conv_bn(ctx: StageContext) -> str:
    from reporter import conv_bn
    from reporter.graph.record import record

    model = ctx.subject.model
    kinds = {type(m) for m in model.modules()}
    if not (kinds & set(conv_bn.CONVS) and kinds & set(conv_bn.NORMS)):
        return "the model has no convolution followed by batch norm"
    if not conv_bn.foldable_pairs(record(model, ctx.subject.args, ctx.subject.kwargs), model):
        return "no batch norm reads a convolution's output alone"
    return ""


@contextmanager
def _stack(*managers: AbstractContextManager[Any]) -> Iterator[None]:
    """Enter several context managers as one."""
    with ExitStack() as stack:
        for m in managers:
            stack.enter_context(m)
        yield


@contextmanager
def _backend_flag(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Set a torch.backends flag for the variant only."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def _is_4d(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 4


def _always(ctx: StageContext) -> str:
    return ""


def _needs_conv(ctx: StageContext) -> str:
    if not any(isinstance(m, nn.Conv2d) for m in ctx.subject.model.modules()):
        return "the model has no Conv2d"
    if not any(_is_4d(a) for a in ctx.subject.args):
        return "no 4-D input to convert"
    return ""


def _needs_float32(ctx: StageContext) -> str:
    dtypes = {p.dtype for p in ctx.subject.model.parameters()}
    return "" if dtypes == {torch.float32} else "the model is not float32"


def _needs_torchao_linear(ctx: StageContext) -> str:
    reason = _needs_float32(ctx) or dv.missing("torchao")
    if reason:
        return reason
    if not dv.has_linear(ctx.subject.model):
        return "no Linear layer to quantise (torchao quantises Linear layers only)"
    return ""


def _needs_int4_backend(ctx: StageContext) -> str:
    reason = _needs_torchao_linear(ctx)
    coverage = dv.int4_coverage(ctx.subject.model)
    if reason or coverage.startswith("no "):
        return reason or coverage
    if ctx.subject.device.type != "cuda":
        return ""
    return dv.missing("mslk") and f"torchao's CUDA int4 kernels need mslk: {dv.missing('mslk')}"


def _needs_onnxruntime(ctx: StageContext) -> str:
    return dv.missing("onnx", "onnxscript", "onnxruntime")


def _needs_cuda_float32(ctx: StageContext) -> str:
    return _needs_cuda(ctx) or _needs_float32(ctx)


def _needs_cuda(ctx: StageContext) -> str:
    return "" if ctx.subject.device.type == "cuda" else "CUDA only"


def _needs_compile_opt_in(ctx: StageContext) -> str:
    if ctx.options.stage_option("experiments", "compile", False):
        return ""
    return "compiling takes minutes on a CPU; add --experiment-compile"


VARIANTS = [
    Variant(
        "inference_mode",
        "torch.inference_mode instead of no_grad",
        "with torch.inference_mode():\n    y = model(x)",
        1e-6,
        _inference_mode,
        _always,
    ),
    Variant(
        "channels_last",
        "channels_last memory format",
        "model = model.to(memory_format=torch.channels_last)\nx = x.to(memory_format=torch.channels_last)",
        1e-4,
        _channels_last,
        _needs_conv,
    ),
    Variant(
        "bf16_autocast",
        "bf16 autocast",
        "with torch.autocast(device_type, dtype=torch.bfloat16):\n    y = model(x)",
        5e-2,
        _bf16_autocast,
        _needs_float32,
        deployment=True,
    ),
    Variant(
        "larger_batch",
        "twice the batch size (time per sample)",
        "loader = DataLoader(dataset, batch_size=2 * batch_size)",
        1e-4,
        _double_batch,
        _always,
    ),
    Variant(
        "int8_dynamic",
        "int8 dynamic quantisation of Linear layers (torchao)",
        "from torchao.quantization import quantize_, Int8DynamicActivationInt8WeightConfig\n"
        "quantize_(model, Int8DynamicActivationInt8WeightConfig())",
        1e-1,
        _int8_dynamic,
        _needs_torchao_linear,
        deployment=True,
    ),
    Variant(
        "int8_weight_only",
        "int8 weight-only quantisation of Linear layers (torchao)",
        "from torchao.quantization import quantize_, Int8WeightOnlyConfig\n"
        "quantize_(model, Int8WeightOnlyConfig())",
        1e-1,
        _int8_weight_only,
        _needs_torchao_linear,
        deployment=True,
    ),
    Variant(
        "int4_weight_only",
        "int4 weight-only quantisation of Linear layers, groups of 32 (torchao)",
        "from torchao.quantization import quantize_, IntxWeightOnlyConfig\n"
        "from torchao.quantization.granularity import PerGroup\n"
        "quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)))",
        2e-1,
        _int4_weight_only,
        _needs_int4_backend,
        deployment=True,
    ),
    Variant(
        "bf16_cast",
        "the whole model in bfloat16",
        "model = model.to(torch.bfloat16)\nx = x.to(torch.bfloat16)",
        5e-2,
        _bf16_cast,
        _needs_float32,
        deployment=True,
    ),
    Variant(
        "fp16_autocast",
        "fp16 autocast",
        "with torch.autocast('cuda', dtype=torch.float16):\n    y = model(x)",
        5e-2,
        _fp16_autocast,
        _needs_cuda_float32,
        deployment=True,
    ),
    Variant(
        "onnxruntime",
        "ONNX Runtime (torch.onnx export)",
        "torch.onnx.export(model, (x,), 'model.onnx', dynamo=True)\n"
        "session = onnxruntime.InferenceSession('model.onnx')\n"
        "y = session.run(None, {session.get_inputs()[0].name: x.numpy()})",
        1e-4,
        _onnxruntime,
        _needs_onnxruntime,
        deployment=True,
    ),
    Variant(
        "bn_fold",
        "batch norm folded into the preceding convolution",
        "from torch.nn.utils.fusion import fuse_conv_bn_eval\n"
        "model.eval()\nmodel.conv1 = fuse_conv_bn_eval(model.conv1, model.bn1)\n"
        "model.bn1 = nn.Identity()",
        1e-4,
        _bn_fold,
        _needs_conv_bn,
        deployment=True,
    ),
    Variant(
        "torch_compile",
        "torch.compile",
        "model = torch.compile(model)",
        1e-4,
        _compile,
        _needs_compile_opt_in,
    ),
    Variant(
        "cudnn_benchmark",
        "cudnn.benchmark = True",
        "torch.backends.cudnn.benchmark = True",
        1e-4,
        _cudnn_benchmark,
        _needs_cuda,
    ),
    Variant(
        "tf32",
        "TF32 matmuls",
        "torch.backends.cuda.matmul.allow_tf32 = True",
        1e-2,
        _tf32,
        _needs_cuda,
    ),
]
