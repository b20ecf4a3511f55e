"""Health stage: does the model train well? A short training probe on a copy of the model,
an optional optimizer comparison, TensorBoard logs and accuracy on eval_batches().

Options (RunOptions.stage_options["health"]): train_steps (0 turns the probe off),
optimizer (sgd, adam, adamw; default adam), lr (default: the optimizer's usual one),
compare_optimizers (bool), logdir (folder of TensorBoard event files).

The probe is opt-in: it runs with --train (up to 20 steps within 3 s), --train-steps N
(exactly N) or --compare-optimizers. A default run audits inference, and the probe would
add a training step and a copy of the model with its gradients and optimizer state: four
times the weights' memory under Adam, 5.4 s of an otherwise 15 s GPT-2 report.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from reporter.errors import UsageError
from reporter.health.training import DEFAULT_LR, resolve_loss
from reporter.loader import MEMORY_HEADROOM, available_memory
from reporter.option_schema import default
from reporter.report.health import HealthSection
from reporter.stages.context import SkipStage, StageContext
from reporter.stages.memory import OPTIMIZER_COPIES

DEFAULT_STEPS = 20
# The default probe (no --train-steps) stops after this many seconds, so a large model
# does not make every report slow; an explicit --train-steps N always runs N steps.
DEFAULT_BUDGET_S = 3.0

METHOD = (
    "Training probe: {steps} steps of {optimizer} (lr {lr:g}) on a deep copy of the model in "
    "train() mode, always on the same sample input, so the analysed model is untouched. "
    "Loss: {loss}. Per layer (a module owning parameters): L2 norm of its gradient and "
    "weights, and the median over steps of ||update|| / ||weights||. ReLU, sigmoid and tanh "
    "outputs are caught wherever they are called (modules and functional calls) and counted: "
    "exact zeros for ReLU, outside [0.01, 0.99] for sigmoid, |y| > 0.99 for tanh. NaN/inf "
    "are located by a forward hook on every module (innermost first) and by the gradients."
)


PROBE_OFF = (
    "the training probe is opt-in (pass --train or --train-steps N) and there is no "
    "--logdir or eval_batches()"
)


def options(ctx: StageContext) -> dict[str, Any]:
    get = ctx.options.stage_option
    asked = get("health", "train_steps")
    compare = bool(get("health", "compare_optimizers", False))
    if asked is not None:
        steps = int(asked)
    else:
        steps = DEFAULT_STEPS if ctx.options.train or compare else 0
    return {
        "steps": steps,
        "opted_out": asked is not None and steps == 0,
        "budget": None if asked is not None else DEFAULT_BUDGET_S,
        "optimizer": get("health", "optimizer", default("optimizer")),
        "lr": get("health", "lr", None),
        "compare": compare,
        "logdir": get("health", "logdir", None),
    }


def run(ctx: StageContext) -> HealthSection:
    opts = options(ctx)
    subject = ctx.subject
    section = HealthSection()
    parts: list[tuple[str, Callable[[], None]]] = []
    if opts["steps"] > 0:
        why = _why_no_probe(subject, opts["optimizer"], opts["compare"])
        if why:
            section.notes.append(f"No training probe: {why}.")
        else:
            parts.append(("training probe", lambda: _probe(ctx, section, opts)))
            if opts["compare"]:
                parts.append(("optimizer comparison", lambda: _compare(ctx, section, opts)))
    if opts["logdir"]:
        parts.append(("training logs", lambda: _logs(section, opts["logdir"])))
    if subject.eval_batches is not None and subject.device.type != "meta":
        parts.append(("accuracy on eval_batches()", lambda: _accuracy(ctx, section)))
    if not parts:
        if section.notes:  # the probe cannot run here: say why
            raise SkipStage(section.notes[0] + " No --logdir or eval_batches() either.")
        if opts["opted_out"]:
            raise SkipStage(
                "the training probe is off (--train-steps 0) and there is no --logdir or "
                "eval_batches(); give --train-steps N to run it"
            )
        raise SkipStage(PROBE_OFF)
    errors: list[BaseException] = []
    for label, part in parts:
        ctx.progress(label)
        try:
            part()
        except UsageError:
            raise
        except Exception as exc:  # one part failing must not lose the others
            errors.append(exc)
            section.notes.append(f"The {label} failed: {type(exc).__name__}: {exc}")
    if len(errors) == len(parts):
        raise errors[0]
    return section


def _why_no_probe(subject: Any, optimizer: str, compare: bool) -> str:
    """Why the probe cannot run on this subject, or '' when it can."""
    if subject.device.type == "meta":
        return "the model is on the meta device"
    params = {id(p): p for p in subject.model.parameters()}.values()
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    if not trainable:
        return "no parameter needs a gradient"
    weights = sum(t.numel() * t.element_size() for t in [*params, *subject.model.buffers()])
    # The copy holds the weights and buffers, a gradient per trainable parameter and the
    # optimizer's states (as many copies as the memory stage counts for it).
    states = max(
        OPTIMIZER_COPIES[o] for o in (["adam", "sgd_momentum"] if compare else [optimizer])
    )
    need = weights + trainable * (1 + states)
    free = available_memory(subject.device)
    if free and need > MEMORY_HEADROOM * free:
        gib = 2**30
        return (
            "a copy of the model with its gradients and optimizer state needs "
            f"{need / gib:.1f} GiB and {subject.device.type} has {free / gib:.1f} GiB free"
        )
    return ""


def _probe(ctx: StageContext, section: HealthSection, opts: dict[str, Any]) -> None:
    from reporter.health.probe import run_probe

    subject = ctx.subject
    model = copy.deepcopy(subject.model)
    lr = opts["lr"] if opts["lr"] is not None else DEFAULT_LR[opts["optimizer"]]
    loss, source = resolve_loss(model, subject, ctx.options.seed, _known_output(ctx))
    section.probe = run_probe(
        model,
        lambda m: m(*subject.args, **subject.kwargs),
        loss,
        optimizer=opts["optimizer"],
        lr=lr,
        steps=opts["steps"],
        seed=ctx.options.seed,
        loss_source=source,
        time_budget=opts["budget"],
    )
    section.method = METHOD.format(
        steps=section.probe.steps_run, optimizer=opts["optimizer"], lr=lr, loss=source
    )


def _compare(ctx: StageContext, section: HealthSection, opts: dict[str, Any]) -> None:
    from reporter.health.compare import compare_optimizers

    subject = ctx.subject
    start = copy.deepcopy(subject.model)  # its no_grad pass must not touch BN statistics
    loss, _ = resolve_loss(start, subject, ctx.options.seed, _known_output(ctx))
    section.comparison = compare_optimizers(
        start, subject, loss, steps=opts["steps"], seed=ctx.options.seed, lr=opts["lr"]
    )


def _known_output(ctx: StageContext) -> Any:
    """The eval-mode output of the shared inference pass, when a stage already ran it."""
    done = ctx.cache.get("inference_pass")
    return done.output if done is not None else None


def _logs(section: HealthSection, logdir: str) -> None:
    from reporter.health.logs import read_logs

    section.logs = read_logs(logdir)


def _accuracy(ctx: StageContext, section: HealthSection) -> None:
    from reporter.health.accuracy import evaluate

    subject = ctx.subject
    section.accuracy = evaluate(subject.model, subject.eval_batches(), subject.device)
