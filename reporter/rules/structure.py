"""Rules that read the static sections: parameters, layers, FLOPs, memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reporter.profiling.categories import op_category
from reporter.report import Finding, OpCount, Report
from reporter.report.experiments import Experiment
from reporter.rules.layer_feed import dominant_advice, layer_feed
from reporter.rules.margin import noise
from reporter.rules.registry import evidence, numbered, rule
from reporter.units import count, nbytes, percent

SOFTMAX_OPS = frozenset({"aten._softmax", "aten._log_softmax", "aten.softmax", "aten.log_softmax"})


@rule(
    "dominant-layer",
    "One layer holds most of the parameters",
    reads=["summary"],
    thresholds={"structure.dominant_layer_share": 0.5},
    doc="A single layer with most of the weights. The advice depends on what feeds it, read "
    "from the layer table's execution order and output shapes: a Linear fed by a "
    "flattened feature map (N, C, H, W) is a CNN head where pooling before the flatten cuts "
    "its size (warning, with the pooled layer's size computed); a layer fed by RoI "
    "pooling, by an already pooled map, or by the raw input is sized by design (info); a "
    "vocabulary embedding or its output projection (same vocabulary, or tied to the "
    "embedding) is normal in a small sequence model (info; tying is suggested when the "
    "two are separate); any other layer (an LSTM, a wide convolution) is info.",
)
def dominant_layer(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    totals = report.model.parameters
    if totals is None or totals.total == 0:
        return []
    layers = report.summary.layers
    leaves = [r for r in layers if r.is_leaf and r.params > 0]
    if len(leaves) < 2:
        return []
    top = max(leaves, key=lambda r: r.params)
    share = top.params / totals.total
    if share <= th["structure.dominant_layer_share"]:
        return []
    feed = layer_feed(report, top)
    advice = dominant_advice(top, feed)
    return [
        Finding(
            rule="dominant-layer",
            severity=advice.severity,
            title=f"`{top.name}` ({top.type}) holds {percent(share)} of all parameters",
            evidence=evidence(
                layer=top.name,
                type=top.type,
                parameters=f"{top.params:,} of {totals.total:,}",
                share=percent(share),
                sizes=" → ".join(str(d) for d in top.dims) or None,
                fed_by=feed.describe(),
            ),
            recommendation=advice.recommendation,
            snippet=advice.snippet,
            target=top.name,
        )
    ]


@rule(
    "double-softmax",
    "Softmax output fed to a loss that applies its own",
    reads=["summary", "memory"],
    doc="CrossEntropyLoss applies log-softmax itself; fed a tensor the model already passed "
    "through (log-)softmax, it trains on squashed logits and learns slowly. Found by "
    "following the tensor: the loss's softmax reads the storage the model's softmax wrote.",
)
def double_softmax(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    training = report.memory.training
    final = report.summary.final_op
    if training is None or not training.softmax_twice:
        return []
    return [
        Finding(
            rule="double-softmax",
            severity="critical",
            title="The loss applies (log-)softmax to an output the model already softmaxed",
            evidence=evidence(final_op=final, loss_ops=", ".join(training.loss_ops)),
            recommendation="Return raw logits from forward and keep cross_entropy, or keep "
            "log_softmax in the model and use nll_loss.",
            snippet="return self.fc2(x)  # logits\nloss = F.cross_entropy(logits, targets)",
        )
    ]


@rule(
    "probabilities-output",
    "A classifier that returns probabilities",
    reads=["summary"],
    doc="The forward ends in softmax or log_softmax and returns one tensor. Trained with "
    "CrossEntropyLoss (which applies log-softmax itself) the probabilities are squashed "
    "a second time and the model learns slowly. Flagged when no loss_fn shows how the "
    "output is trained, or the memory stage did not run it; when the file's loss_fn ran "
    "and reads the output correctly (nll_loss after log_softmax) nothing is flagged, and "
    "when it provably applies softmax again double-softmax reports it as critical.",
)
def probabilities_output(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    summary = report.summary
    final = summary.final_op
    if final not in SOFTMAX_OPS or len(summary.outputs) != 1:
        return []  # several outputs: logits are usually among them
    training = report.memory.training if report.memory is not None else None
    checked = summary.loss_fn_given and training is not None and bool(training.loss_ops)
    if checked:
        return []  # the loss ran: double-softmax says whether it softmaxes again
    log = "log_softmax" in final
    return [
        Finding(
            rule="probabilities-output",
            severity="warning",
            title="The model returns "
            + ("log-probabilities (log_softmax)" if log else "probabilities (softmax)")
            + ", not logits",
            evidence=evidence(
                final_op=final,
                output=_output_text(summary.outputs),
                loss_fn="defined, not run (run the memory stage to check it)"
                if summary.loss_fn_given
                else "none in the model file",
            ),
            recommendation=(
                "Train it with nll_loss, not cross_entropy (which applies log-softmax "
                "again); or return logits and use cross_entropy."
                if log
                else "Return logits from forward and apply softmax only where probabilities "
                "are needed: CrossEntropyLoss applies log-softmax itself, so on "
                "probabilities it squashes them twice."
            ),
            snippet=(
                "loss = F.nll_loss(log_probs, targets)"
                if log
                else "return self.head(x)  # logits\nloss = F.cross_entropy(logits, targets)"
                "\nprobs = logits.softmax(-1)  # at inference only"
            ),
        )
    ]


def _output_text(outputs: list[Any]) -> str | None:
    spec = outputs[0] if outputs else None
    if not isinstance(spec, dict):
        return None
    return f"{spec.get('name', 'output')} {spec.get('shape')} {spec.get('dtype', '')}".strip()


@rule(
    "train-mode-at-build",
    "Model built in training mode with modules that behave differently in training",
    reads=["summary"],
    doc="nn.Module starts in training mode. Modules whose output changes in training "
    "(Dropout with p > 0, BatchNorm with running statistics, DropPath/StochasticDepth, "
    "any custom module whose code reads self.training and computes differently) then "
    "behave as in training. Found by reading each class's bytecode for `.training`, then "
    "deciding by torch's documented semantics for its own classes and by running any "
    "other module on its own input in both modes; modules that read the flag but compute "
    "the same (Dropout(p=0): ViT-B/16 has 37) are left out. perfreport analyses in eval "
    "mode; inference code must call model.eval().",
)
def train_mode(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    summary = report.summary
    modules = summary.train_mode_modules
    if not modules:
        return []
    kinds = ", ".join(f"{n} {cls}" for cls, n in sorted(summary.train_mode_types.items()))
    return [
        Finding(
            rule="train-mode-at-build",
            severity="info",
            title=f"{len(modules)} module(s) that behave differently in training were in "
            "training mode as built",
            evidence=evidence(
                modules=_names(modules),
                kinds=kinds or None,
                ignored=f"{summary.train_mode_same} module(s) read .training but compute "
                "the same in both modes"
                if summary.train_mode_same
                else None,
            ),
            recommendation="Call model.eval() before inference, export or benchmarking "
            "(perfreport measured in eval mode).",
            snippet="model.eval()\nwith torch.inference_mode():\n    y = model(x)",
        )
    ]


@rule(
    "conv-bn-fold",
    "Batch norm after a convolution at inference",
    reads=["summary"],
    doc="At inference a BatchNorm is a fixed per-channel scale and shift: folded into the "
    "convolution before it (torch.nn.utils.fusion.fuse_conv_bn_eval) it costs nothing. "
    "Pairs are counted from a recorded forward: the batch norm reads the convolution's "
    "output and nothing else does (ResNet-50 runs 53 such pairs). Eager PyTorch does not "
    "fold them; torch.compile with freezing, TorchScript freezing and ONNX runtimes do. "
    "With --experiments the bn_fold experiment times the folded copy and the finding "
    "quotes it.",
)
def conv_bn_fold(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    pairs = report.summary.conv_bn_pairs
    if not pairs:
        return []
    measured = _experiment(report, "bn_fold")
    gain = measured is not None and measured.clearly_faster and measured.outputs_match
    shown = "; ".join(f"{c} → {b}" for c, b in pairs[:4]) + (" …" if len(pairs) > 4 else "")
    return [
        Finding(
            rule="conv-bn-fold",
            severity="warning" if gain else "info",
            title=f"{len(pairs)} BatchNorm layer(s) follow a convolution and can be folded "
            "into it for inference",
            evidence=evidence(
                foldable_pairs=len(pairs),
                pairs=shown,
                experiment=_experiment_text(measured),
            ),
            recommendation="For inference, fold each BatchNorm into its convolution (one "
            "op instead of two, same outputs within rounding); torch.compile does it with "
            "freezing, and so do TorchScript freezing and ONNX runtimes."
            + ("" if measured else " Measure it with --experiments."),
            snippet="from torch.nn.utils.fusion import fuse_conv_bn_eval\nmodel.eval()\n"
            f"model.{pairs[0][0]} = fuse_conv_bn_eval(model.{pairs[0][0]}, model.{pairs[0][1]})"
            f"\nmodel.{pairs[0][1]} = nn.Identity()",
            target=pairs[0][1],
        )
    ]


def _experiment(report: Report, name: str) -> Experiment | None:
    section = report.experiments
    return next((e for e in section.experiments if e.name == name), None) if section else None


def _experiment_text(e: Experiment | None) -> str | None:
    if e is None:
        return None
    if e.status != "measured":
        return f"bn_fold {e.status}: {e.reason}"
    match = "outputs match" if e.outputs_match else "outputs differ"
    error = "not comparable" if e.max_abs_error is None else f"{e.max_abs_error:.2g}"
    return (
        f"bn_fold measured {e.speedup:.2f}× ({e.speedup_low:.2f}–{e.speedup_high:.2f}×), "
        f"{e.baseline_ms:.3f} → {e.variant_ms:.3f} ms per call; largest output difference "
        f"{error} ({match} within {e.tolerance:g} of the output's scale)"
    )


@rule(
    "float64-parameters",
    "Parameters in float64",
    reads=["summary"],
    doc="float64 doubles memory and is many times slower than float32 on GPUs.",
)
def float64(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    totals = report.model.parameters
    n = (totals.by_dtype if totals else {}).get("float64", 0)
    if not n:
        return []
    return [
        Finding(
            rule="float64-parameters",
            severity="warning",
            title=f"{count(n)} parameters are float64",
            evidence=evidence(float64_parameters=f"{n:,}", bytes=nbytes(n * 8)),
            recommendation="Use float32 (or bf16/fp16 for inference) unless the maths needs "
            "double precision.",
            snippet="model = model.float()",
        )
    ]


@rule(
    "tensor-core-alignment",
    "Linear/Conv sizes not multiples of 8 on a GPU",
    reads=["summary", "flops"],
    thresholds={"structure.alignment_min_flops_share": 0.01},
    doc="Tensor Cores run fp16/bf16 matmuls fastest when sizes are multiples of 8.",
)
def alignment(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    if not report.model.device.startswith("cuda"):
        return []
    shares = {m.name: m.share for m in report.flops.by_module}
    bad = [
        r
        for r in report.summary.layers
        if r.dims
        and r.type in ("Linear", "Conv1d", "Conv2d", "Conv3d")
        and shares.get(r.name, 0) >= th["structure.alignment_min_flops_share"]
        and any(d >= 8 and d % 8 for d in r.dims)
    ]
    if not bad:
        return []
    return [
        Finding(
            rule="tensor-core-alignment",
            severity="warning",
            title=f"{len(bad)} heavy layer(s) have sizes that are not multiples of 8",
            evidence=evidence(
                layers="; ".join(f"{r.name} {r.type} {r.dims}" for r in bad[:6]),
                flops_share=percent(sum(shares.get(r.name, 0) for r in bad)),
            ),
            recommendation="Pad feature/channel counts up to a multiple of 8 (64 is better "
            "still) so fp16/bf16 matmuls can use Tensor Cores.",
            snippet="hidden = (hidden + 7) // 8 * 8",
            target=bad[0].name,
        )
    ]


@rule(
    "forward-warnings",
    "The forward pass raised warnings",
    reads=["summary"],
    doc="Warnings during forward (e.g. Dropout2d on 2-D input) often mean a layer does not "
    "do what was intended.",
)
def forward_warnings(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    lines = report.summary.forward_warnings
    if not lines:
        return []
    return [
        Finding(
            rule="forward-warnings",
            severity="warning",
            title=f"The forward pass raised {len(lines)} warning(s)",
            evidence=evidence(**numbered("warning", lines[:5])),
            recommendation="Read each warning: it names a layer used in a way PyTorch "
            "considers wrong or deprecated.",
        )
    ]


@rule(
    "nonfinite-output",
    "NaN or Inf in the model's output",
    reads=["summary"],
    doc="A model whose output holds NaN/Inf on the sample input is broken for that input.",
)
def nonfinite(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    n = report.summary.output_nonfinite
    if not n:
        return []
    return [
        Finding(
            rule="nonfinite-output",
            severity="critical",
            title=f"The output holds {n:,} NaN/Inf value(s) on the sample input",
            evidence=evidence(nonfinite_elements=f"{n:,}"),
            recommendation="Find the first module producing NaN/Inf (torch.autograd."
            "set_detect_anomaly, or forward hooks checking torch.isfinite) and fix its input "
            "range, initialisation or a division/log of zero.",
            snippet="for name, m in model.named_modules():\n"
            "    m.register_forward_hook(lambda m, i, o, n=name: "
            "print(n) if not torch.isfinite(o).all() else None)",
        )
    ]


@rule(
    "unused-parameters",
    "Trainable parameters that get no gradient",
    reads=["memory"],
    doc="Parameters outside the loss's graph waste memory and make DDP fail or slow "
    "(find_unused_parameters=True). When the training pass could only run in eval mode "
    "(a detection model raises without targets in train mode), eval mode cuts some "
    "parameters off by design (detached proposals, train-only losses and heads): those "
    "the eval forward read are not flagged, those it never read are reported at info "
    "level, and the evidence says the figures come from eval mode.",
)
def unused(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    training = report.memory.training
    if training is None or not training.params_without_grad:
        return []
    eval_mode = training.mode == "eval"
    # In eval mode a parameter the forward read but no gradient reached sits behind a
    # detach or an index on purpose: only never-read parameters are worth a look.
    names = training.params_not_read if eval_mode else training.params_without_grad
    if not names:
        return []
    unread = set(training.params_not_read)
    read = [n for n in names if n not in unread]
    return [
        Finding(
            rule="unused-parameters",
            severity="info" if eval_mode else "warning",
            title=f"{len(names)} trainable parameter(s) got no gradient in a "
            + ("training step" if not eval_mode else "step run in eval mode"),
            evidence=evidence(
                parameters=_names(names),
                never_read_by_forward=_names([n for n in names if n in unread]) or None,
                read_but_no_gradient=_names(read) or None,
                training_mode="eval: the training figures come from an eval-mode pass ("
                + training.mode_note
                + "); parameters the eval forward read are not flagged"
                if eval_mode
                else None,
            ),
            recommendation=(
                "The eval-mode forward never used these; in training they may be used by "
                "train-only branches (losses, auxiliary heads). Check with a real training "
                "step (give loss_fn and targets), then remove or freeze what stays unused."
                if eval_mode
                else "Remove the unused modules, freeze them (requires_grad_(False)), or "
                "make sure the loss depends on them."
            ),
            snippet=f"model.{names[0].rsplit('.', 1)[0]}.requires_grad_(False)"
            if "." in names[0]
            else "",
            target=names[0].rsplit(".", 1)[0],
        )
    ]


def _names(names: list[str]) -> str:
    """The first eight names, and an ellipsis when there are more."""
    return ", ".join(names[:8]) + (" …" if len(names) > 8 else "")


@rule(
    "untied-duplicates",
    "Equal weights stored twice",
    reads=["summary"],
    doc="Two parameters with identical values in separate memory are often weights meant "
    "to be tied (embedding and output head); tying halves their memory.",
)
def untied(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    totals = report.model.parameters
    dups = totals.duplicates if totals else []
    if not dups:
        return []
    wasted = sum(d.numel * (len(d.names) - 1) for d in dups)
    return [
        Finding(
            rule="untied-duplicates",
            severity="info",
            title=f"{len(dups)} group(s) of parameters hold equal values in separate memory",
            evidence=evidence(
                groups="; ".join(" = ".join(d.names) for d in dups[:5]),
                duplicated_parameters=f"{wasted:,}",
            ),
            recommendation="If they should stay equal, tie them so one tensor is stored and "
            "trained.",
            snippet="model.lm_head.weight = model.wte.weight",
        )
    ]


COMPUTE_HINTS = ("attention", "lstm", "gru", "rnn", "_scaled_dot_product")


@rule(
    "flops-not-counted",
    "Heavy ops missing from the FLOP count",
    reads=["flops"],
    thresholds={"flops.uncounted_time_share": 0.05},
    doc="FlopCounterMode has no formula for some ops. perfreport adds formulas for CPU "
    "attention, the fused transformer fast paths and RNN layers; any other op that takes "
    "at least this share of the profiled op time without a formula (a distance, a custom "
    "kernel, a new fused op) makes the total understate the work. Elementwise ops, "
    "reductions and copies are outside the convention and not flagged. Without a "
    "profile, ops named like attention or RNNs are flagged. An op's share must clear the "
    "threshold with the step's noise taken out (see hot-module).",
)
def uncounted(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    limit = th["flops.uncounted_time_share"]
    n = noise(report.profile, th)
    ops_us, all_us = _op_times(report)
    share = {op: us / all_us for op, us in ops_us.items()} if all_us else {}
    ops = [
        o
        for o in report.flops.uncounted_ops
        if (o.op in share and _computes(o.op) and n.share_above(ops_us[o.op], all_us, limit))
        or (o.op not in share and any(h in o.op for h in COMPUTE_HINTS))
    ]
    if not ops:
        return []
    ops.sort(key=lambda o: -share.get(o.op, 0.0))

    def described(o: OpCount) -> str:
        timed = f", {percent(share[o.op])} of op time" if o.op in share else ""
        return f"{o.op}, {o.calls} call(s){timed}"

    return [
        Finding(
            rule="flops-not-counted",
            severity="info",
            title="The FLOP total leaves out " + ", ".join(o.op for o in ops[:4]),
            evidence=evidence(**numbered("op", (described(o) for o in ops[:6]))),
            recommendation="Read FLOP figures as a lower bound; compare models by measured "
            "time as well.",
        )
    ]


def _computes(op: str) -> bool:
    """Matrix-like or unclassified work: elementwise ops, reductions (normalisation,
    softmax, pooling) and copies are outside the FLOP convention on purpose."""
    return op_category(op.replace(".", "::", 1)) in ("matmul/conv", "other")


def _op_times(report: Report) -> tuple[dict[str, float], float]:
    """Time inside each op (its total: the counter misses an uncounted op's inner ops too)
    and all ops' self time, per step, under the FLOP counter's names ('aten::addmm' in the
    profile is 'aten.addmm' there)."""
    ops = report.profile.ops_by_name if report.profile else []
    return {o.name.replace("::", ".", 1): o.total_us for o in ops}, sum(o.self_us for o in ops)


@rule(
    "training-does-not-fit",
    "Training memory exceeds the device",
    reads=["memory"],
    thresholds={"memory.fit_fraction": 0.9},
    doc="The training-step estimate (weights, gradients, Adam state, activations) is "
    "above the device's memory.",
)
def does_not_fit(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    training = report.memory.training
    device = report.environment.device_memory_bytes
    if training is None or not device or "adam" not in training.total_bytes:
        return []
    need = training.total_bytes["adam"]
    if need <= th["memory.fit_fraction"] * device:
        return []
    return [
        Finding(
            rule="training-does-not-fit",
            severity="critical",
            title=f"A training step with Adam needs about {nbytes(need)}; "
            f"the device has {nbytes(device)}",
            evidence=evidence(
                estimate_adam=nbytes(need),
                estimate_sgd=nbytes(training.total_bytes.get("sgd")),
                device_memory=nbytes(device),
                saved_activations=nbytes(training.saved_activation_bytes),
            ),
            recommendation="Use bf16 mixed precision, activation checkpointing, a smaller "
            "batch, or shard optimizer state (FSDP/ZeRO).",
            snippet="with torch.autocast('cuda', dtype=torch.bfloat16):\n    loss = model(x).sum()",
        )
    ]


@rule(
    "activations-dominate",
    "Activations dominate training memory",
    reads=["memory"],
    thresholds={"memory.activation_share": 0.5},
    doc="When tensors saved for backward are most of the training memory, activation "
    "checkpointing or a smaller batch helps more than anything done to the weights.",
)
def activations(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    training = report.memory.training
    if training is None or "adam" not in training.total_bytes:
        return []
    total = training.total_bytes["adam"]
    share = training.saved_activation_bytes / total if total else 0
    if share <= th["memory.activation_share"]:
        return []
    return [
        Finding(
            rule="activations-dominate",
            severity="info",
            title=f"Activations saved for backward are {percent(share)} of training memory",
            evidence=evidence(
                saved_activations=nbytes(training.saved_activation_bytes),
                training_total_adam=nbytes(total),
            ),
            recommendation="Checkpoint the heaviest blocks (recompute them in backward) or "
            "lower the batch size.",
            snippet="from torch.utils.checkpoint import checkpoint\n"
            "x = checkpoint(block, x, use_reentrant=False)",
        )
    ]


@rule(
    "cuda-out-of-memory",
    "A stage ran out of GPU memory",
    reads=[],
    doc="A CUDA out-of-memory error in a stage, with the allocator's figures at the failure.",
)
def cuda_oom(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    findings = []
    for name, status in report.stages.items():
        facts = status.facts or {}
        if not facts.get("out_of_memory"):
            continue
        findings.append(
            Finding(
                rule="cuda-out-of-memory",
                severity="critical",
                title=f"The {name} stage ran out of GPU memory",
                evidence=evidence(
                    allocated=nbytes(facts.get("allocated_bytes")),
                    reserved=nbytes(facts.get("reserved_bytes")),
                    peak_allocated=nbytes(facts.get("max_allocated_bytes")),
                    device_total=nbytes(facts.get("device_total_bytes")),
                    error=status.error,
                ),
                recommendation="Lower the batch size, use bf16 autocast, or checkpoint "
                "activations; the memory section shows what the model needs.",
                snippet="with torch.autocast('cuda', dtype=torch.bfloat16):\n    y = model(x)",
            )
        )
    return findings
