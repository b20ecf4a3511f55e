"""FLOPs stage: FlopCounterMode's counts per module and per op, and what it could not count."""

from __future__ import annotations

from collections import Counter

from torch.utils.flop_counter import flop_registry

from reporter.flop_formulas import EXTRA_FLOP_FORMULAS
from reporter.report import FlopsSection, ModuleFlops, OpCount
from reporter.stages.context import StageContext
from reporter.stages.passes import DATA_MOVEMENT, inference_pass, training_pass

METHOD = (
    "torch.utils.flop_counter.FlopCounterMode over one forward on the sample input "
    "(a multiply-add is 2 FLOPs). It counts matrix multiplications, convolutions and "
    "attention (perfreport adds formulas for what it lacks: CPU flash attention, and the "
    "fused fast paths of nn.MultiheadAttention and nn.TransformerEncoderLayer, RNN layers "
    "run as one op, matrix-vector, int8 and weight-only quantized products); "
    "elementwise ops, normalisation and softmax have no formula and are listed "
    "under 'not counted'."
)


BACKWARD_METHOD = (
    " Backward: FLOPs counted while loss.backward() ran, in a separate train-mode pass "
    "(forward, loss, backward) under the same counter; a module's backward is the work "
    "of the autograd nodes its forward created (its children's included), the loss's "
    "own backward is the model's. Convolution backward: one forward's count for each "
    "gradient computed (input, weight), groups included (torch's formula multiplies a "
    "grouped convolution's weight gradient by its groups)."
)

CAUSAL_METHOD = (
    " Attention is counted over every query-key pair (S x S), causal or not, as "
    "FlopCounterMode does; for scaled_dot_product_attention kernels run with "
    "is_causal=True or an attention mask (boolean, or additive with -inf or the dtype's "
    "lowest value) the causal figure counts only the pairs let through. Attention "
    "written as matmul, mask and softmax (eager) is not detected and stays at S x S."
)


def run(ctx: StageContext) -> FlopsSection:
    forward = inference_pass(ctx)
    training = training_pass(ctx) if _wants_training(ctx) else None
    if training is not None and not training.ran_backward:
        training = None
    root = type(ctx.subject.model).__name__
    fwd_by_module = _by_module(forward.flop_counts, root)
    # Backward is what the training pass counted while backward ran: a train-only branch
    # such as an auxiliary head is forward work, not backward.
    bwd_by_module = _by_module(training.backward_flop_counts, root) if training else {}
    total = forward.flops_total
    modules = []
    for name, module in ctx.subject.model.named_modules():
        if name not in fwd_by_module and name not in bwd_by_module:
            continue
        fwd = fwd_by_module.get(name, 0)
        modules.append(
            ModuleFlops(
                name=name,
                type=type(module).__name__,
                depth=0 if not name else name.count(".") + 1,
                forward=fwd,
                backward=bwd_by_module.get(name, 0) if training else None,
                share=fwd / total if total else 0.0,
            )
        )
    backward_total = training.backward_flops_total if training else None
    causal_ops = sorted(
        set(forward.causal_ops) | set(training.backward_causal_ops if training else [])
    )
    return FlopsSection(
        forward_total=total,
        backward_total=backward_total,
        by_module=modules,
        by_op=_by_op(forward.flop_counts.get("Global", {}), forward.ops),
        uncounted_ops=_uncounted(forward.ops),
        method=METHOD + (BACKWARD_METHOD if training else "") + CAUSAL_METHOD,
        forward_causal_total=total - forward.causal_saved if forward.causal_ops else None,
        backward_causal_total=(
            backward_total - training.backward_causal_saved
            if training and training.backward_causal_ops
            else None
        ),
        causal_ops=causal_ops,
        backward_note=f"Backward FLOPs come from an eval-mode pass: {training.note}."
        if training is not None and training.mode == "eval"
        else "",
    )


def _wants_training(ctx: StageContext) -> bool:
    """Count backward when a training figure is asked for or the pass runs anyway."""
    return ctx.options.train or "memory" in ctx.options.stages


def _by_module(counts: dict[str, dict[str, int]], root: str) -> dict[str, int]:
    """FlopCounterMode names modules 'Root.child.sub'; turn that into 'child.sub'."""
    out: dict[str, int] = {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        if key == root:
            name = ""
        elif key.startswith(root + "."):
            name = key[len(root) + 1 :]
        else:
            continue
        out[name] = out.get(name, 0) + sum(ops.values())
    return out


def _by_op(global_counts: dict[str, int], calls: Counter[str]) -> list[OpCount]:
    rows = [
        OpCount(op=str(op), calls=calls.get(str(op), 0), flops=n) for op, n in global_counts.items()
    ]
    return sorted(rows, key=lambda r: -r.flops)


def _uncounted(calls: Counter[str]) -> list[OpCount]:
    """Ops that ran with arithmetic FlopCounterMode has no formula for, most calls first."""
    counted = {str(k) for k in flop_registry} | {str(k) for k in EXTRA_FLOP_FORMULAS}
    rows = [
        OpCount(op=op, calls=n)
        for op, n in calls.items()
        if op not in counted and op not in DATA_MOVEMENT
    ]
    return sorted(rows, key=lambda r: (-r.calls, r.op))
