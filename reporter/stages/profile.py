"""The profile stage: torch.profiler over a few steps, a Kineto trace under DIR/trace/.

Inference steps run under ``eval()`` + ``inference_mode``; with ``--train`` each step is
forward + backward + AdamW step on a deep copy of the model, so the weights the other
stages analyse never change. Times in the section are per step, averaged over the active
steps. Latency is not taken from here (the profiler adds overhead): see the timing stage.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEventAvg
from torch.profiler import ProfilerActivity, profile, schedule

from reporter.output import write_atomic
from reporter.profiling.categories import group_times, kernel_category, op_category
from reporter.profiling.options import profile_steps
from reporter.profiling.scopes import (
    SCOPE_PREFIX,
    kernel_totals,
    memory_peak,
    module_scopes,
    module_totals,
    range_path,
    step_durations,
)
from reporter.profiling.stats import quantile
from reporter.profiling.train_step import train_step
from reporter.report.profile import KernelTime, ModuleTime, OpTime, ProfileSection
from reporter.stages.context import StageContext

TOP_OPS = 25
TOP_KERNELS = 25
WORKER_NAME = "perfreport"


def run(ctx: StageContext) -> ProfileSection:
    subject = ctx.subject
    device = subject.device
    wait, warmup, active = profile_steps(ctx.options.stage_option("profile", "steps"))
    with_stack = bool(ctx.options.stage_option("profile", "with_stack", False))
    train = bool(ctx.options.train)
    cuda = device.type == "cuda"

    notes: list[str] = []
    step, model, optimizer = _step_function(ctx, train, notes)
    mode = "train" if optimizer is not None else "inference"

    trace_dir = ctx.out_dir / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    _remove_old_traces(trace_dir)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    settings = {
        "record_shapes": True,
        "profile_memory": True,
        "with_flops": True,
        "with_modules": True,
        "with_stack": with_stack,
    }
    written: list[tuple[Path, bytes]] = []
    started = time.perf_counter()
    with (
        module_scopes(model),
        profile(
            activities=activities,
            schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=1),
            on_trace_ready=lambda p: written.append(write_trace(p, trace_dir, WORKER_NAME)),
            **settings,
        ) as prof,
    ):
        for _ in range(wait + warmup + active):
            step()
            if cuda:
                # The step's host range then covers its GPU work too.
                torch.cuda.synchronize(device)
            prof.step()
    recorded_s = time.perf_counter() - started
    if optimizer is not None and "memory" in ctx.options.stages and wait + warmup + active > 1:
        # The memory timeline reads the last recorded step rather than record its own; the
        # first step would not do (the optimizer's state does not exist before it).
        from reporter.profiling.memory_timeline import TRAINING_STEP, step_record

        ctx.cache[TRAINING_STEP] = step_record(
            prof, model, optimizer, (subject.args, subject.kwargs), "The profile stage's last"
        )

    if not written:
        raise RuntimeError(f"torch.profiler wrote no trace file under {trace_dir}")
    trace_file, trace_json = written[-1]
    events = json.loads(trace_json).get("traceEvents", [])
    del trace_json
    steps_us = step_durations(events)
    n_steps = len(steps_us) or active

    section = ProfileSection(
        mode=mode,
        device=str(device),
        trace_files=[str(trace_file.relative_to(ctx.out_dir))],
        schedule={"wait": wait, "warmup": warmup, "active": active},
        settings=settings,
        step_us=steps_us,
        step_us_median=quantile(steps_us, 0.5) if steps_us else 0.0,
        optimizer=type(optimizer).__name__ if optimizer is not None else None,
        notes=notes,
    )
    # Shares against the mean step: the modules' totals are means over the same steps.
    step_mean = sum(steps_us) / len(steps_us) if steps_us else 0.0
    section.modules = module_times(events, model, n_steps, step_mean, 1 if cuda else 0)
    # One key_averages call (parsing Kineto's results is most of its cost, 0.5 s for
    # GPT-2): the by-name table sums its by-shape rows.
    by_shape = prof.key_averages(group_by_input_shape=True)
    section.ops_by_name = op_times(merge_shapes(by_shape), n_steps)
    section.top_ops = op_times(by_shape, n_steps)[:TOP_OPS]
    section.categories_us = group_times(
        {o.name: o.self_us for o in section.ops_by_name}, op_category
    )
    if cuda:
        kernels = kernel_totals(events)
        section.kernels = sorted(
            (
                KernelTime(k, round(n / n_steps), t / n_steps, kernel_category(k))
                for k, (n, t) in kernels.items()
            ),
            key=lambda k: -k.total_us,
        )[:TOP_KERNELS]
        section.kernel_categories_us = group_times(
            {k: t / n_steps for k, (_, t) in kernels.items()}, kernel_category
        )
        section.peak_memory_bytes = torch.cuda.max_memory_allocated(device)
        section.peak_memory_method = (
            "torch.cuda.max_memory_allocated over the profiled steps (weights included)"
        )
    section.cpu_peak_bytes = memory_peak(events, device_type=0)
    if not cuda:
        section.peak_memory_bytes = section.cpu_peak_bytes
        section.peak_memory_method = (
            "profiler CPU memory events: peak allocated during the active steps, above what "
            "was allocated before (weights and inputs not included)"
        )
    section.method = (
        f"torch.profiler {'CPU+CUDA' if cuda else 'CPU'}, {mode} steps, schedule wait={wait} "
        f"warmup={warmup} active={active}, record_shapes, profile_memory, with_flops"
        f"{', with_stack' if with_stack else ''}; module times from 'nn.Module: <path>' "
        f"ranges opened by forward hooks; figures are per step, averaged over {n_steps} "
        f"active steps; recording took {recorded_s:.2f} s. Profiled times include profiler "
        "overhead: latency comes from the timing stage."
    )
    return section


def write_trace(prof: profile, trace_dir: Path, worker_name: str) -> tuple[Path, bytes]:
    """The trace as torch.profiler.tensorboard_trace_handler lays it out
    (``{worker}.{time_ns}.pt.trace.json.gz``, which torch-tb-profiler and Perfetto read),
    written atomically; returns its path and the uncompressed JSON.

    torch's own gzip export feeds the file to gzip line by line at level 9: 0.2-0.7 s for
    GPT-2's three steps, against 0.03 s compressed in one call at level 6.
    """
    with tempfile.TemporaryDirectory() as tmp:  # where torch's own export puts it
        raw = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(raw))
        data = raw.read_bytes()
    path = trace_dir / f"{worker_name}.{time.time_ns()}.pt.trace.json.gz"
    write_atomic(path, gzip.compress(data, compresslevel=6, mtime=0))
    return path, data


def _remove_old_traces(trace_dir: Path) -> None:
    """A rerun into the same folder must not leave an older run's trace beside the new one."""
    for old in trace_dir.glob(f"{WORKER_NAME}*.pt.trace.json*"):
        old.unlink(missing_ok=True)


def _step_function(
    ctx: StageContext, train: bool, notes: list[str]
) -> tuple[Callable[[], None], torch.nn.Module, torch.optim.Optimizer | None]:
    subject = ctx.subject
    if train:
        step = train_step(subject)
        if step is not None:
            return step.run, step.model, step.optimizer
        notes.append("--train: no trainable output to back-propagate; profiled inference")

    model = subject.model.eval()

    def inference_step() -> None:
        with torch.inference_mode():
            subject.call()

    return inference_step, model, None


def module_times(
    events: list[dict[str, Any]],
    model: torch.nn.Module,
    n_steps: int,
    step_us: float,
    device_type: int = 0,
) -> list[ModuleTime]:
    types = {path: type(m).__name__ for path, m in model.named_modules()}
    # The trace has each path as range_path wrote it; the report keeps the real name.
    real = {range_path(path): path for path in reversed(types)}
    rows = []
    for traced, t in module_totals(events, device_type).items():
        path = real.get(traced, traced)
        total = t.total_us / n_steps
        rows.append(
            ModuleTime(
                name=path,
                type=types.get(path, t.cls),
                depth=0 if path == "" else path.count(".") + 1,
                calls=round(t.calls / n_steps),
                total_us=total,
                self_us=t.self_us / n_steps,
                share=total / step_us if step_us else 0.0,
                allocated_bytes=round(t.allocated_bytes / n_steps),
            )
        )
    order = {path: i for i, path in enumerate(types)}  # model order, as torchinfo lists it
    return sorted(rows, key=lambda r: order.get(r.name, len(order)))


def merge_shapes(averages: Any) -> list[FunctionEventAvg]:
    """Key averages grouped by input shape, summed into one entry per op name."""
    merged: dict[tuple[str, Any], FunctionEventAvg] = defaultdict(FunctionEventAvg)
    for evt in averages:
        merged[(evt.key, evt.device_type)].add(evt)
    return list(merged.values())


def op_times(averages: Any, n_steps: int) -> list[OpTime]:
    """Host ops from the profiler's key averages, by self CPU time, per step."""
    rows = []
    for evt in averages:
        name = evt.key
        if evt.device_type != DeviceType.CPU or _is_annotation(name):
            continue
        shapes = getattr(evt, "input_shapes", None)
        rows.append(
            OpTime(
                name=name,
                calls=round(evt.count / n_steps),
                self_us=evt.self_cpu_time_total / n_steps,
                total_us=evt.cpu_time_total / n_steps,
                category=op_category(name),
                input_shapes=_shapes_text(shapes),
                device_self_us=getattr(evt, "self_device_time_total", 0.0) / n_steps,
                flops=int((evt.flops or 0) / n_steps),
            )
        )
    rows.sort(key=lambda r: -r.self_us)
    return rows


def _is_annotation(name: str) -> bool:
    return (
        name.startswith(SCOPE_PREFIX)
        or name.startswith("ProfilerStep")
        or name.startswith("perfreport.")
        or name.startswith("Optimizer.")
        or name.startswith("## ")
    )


def _shapes_text(shapes: Any) -> str:
    """[[8, 3], [3], [], []] -> '8×3, 3': scalars and other non-tensor arguments at the end
    are dropped, those between tensors kept as '·' so positions stay readable."""
    parts = ["×".join(str(d) for d in s) if s else "·" for s in shapes or []]
    while parts and parts[-1] == "·":
        parts.pop()
    return ", ".join(parts)
