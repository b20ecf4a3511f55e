"""Batch-size sweep: latency, throughput and peak memory for batch 1, 2, 4, ... to a limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from reporter.option_schema import default
from reporter.profiling.measure import measure
from reporter.profiling.stats import knee, quantile
from reporter.report.profile import BatchSweep, SweepPoint

DEFAULT_MAX_BATCH = default("sweep_max_batch")
DEFAULT_SECONDS = default("sweep_seconds")  # the whole sweep
POINT_SECONDS = 0.3  # measuring time per batch size
CPU_MEMORY_SHARE = 0.25  # of physical RAM
CUDA_MEMORY_SHARE = 0.8  # of the device's memory


@dataclass
class SweepLimits:
    max_batch: int = DEFAULT_MAX_BATCH
    seconds: float = DEFAULT_SECONDS
    memory_bytes: int | None = None  # None: a share of RAM or of the GPU's memory
    point_seconds: float = POINT_SECONDS


def batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The first dim of the first input tensor (1 when there is none or it is a scalar)."""
    for value in [*args, *kwargs.values()]:
        if isinstance(value, torch.Tensor):
            return int(value.shape[0]) if value.dim() > 0 else 1
    return 1


def with_batch(
    args: tuple[Any, ...], kwargs: dict[str, Any], batch: int
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Inputs whose first dim is the sample batch, resized to ``batch`` by cycling rows."""
    old = batch_size(args, kwargs)

    def resize(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == old:
            index = torch.arange(batch, device=value.device) % old
            return value.index_select(0, index).contiguous()
        return value

    return tuple(resize(a) for a in args), {k: resize(v) for k, v in kwargs.items()}


def default_memory_limit(device: torch.device) -> int:
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        return int(CUDA_MEMORY_SHARE * total)
    from reporter.memlimit import total_bytes

    return int(CPU_MEMORY_SHARE * total_bytes())  # a cgroup's limit when it is lower


def peak_memory(call: Callable[[], Any], device: torch.device, input_bytes: int) -> int:
    """Peak bytes of one forward: CUDA's allocator peak, or on CPU the tensors it created.

    On CPU there is no allocator statistic, so live tensor storages are tracked per op
    (the static stages' tracker) and the inputs are added.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    from reporter.stages.passes import LiveTensorTracker

    tracker = LiveTensorTracker()
    with tracker:
        out = call()
        peak = tracker.peak
    del out
    return int(peak + input_bytes)


def run_sweep(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    device: torch.device,
    limits: SweepLimits,
    progress: Callable[[str], None] | None = None,
    on_point: Callable[[BatchSweep], None] | None = None,
) -> BatchSweep:
    """Double the batch until max_batch, the time limit, the memory limit or out of memory.

    The next batch is not run when its memory (extrapolated linearly from the last two
    points) or its measuring time (from the last point) would pass a limit.
    """
    memory_limit = limits.memory_bytes or default_memory_limit(device)
    sweep = BatchSweep(
        limits={
            "max_batch": limits.max_batch,
            "seconds": limits.seconds,
            "memory_bytes": memory_limit,
        },
        memory_method=(
            "torch.cuda.max_memory_allocated (weights included)"
            if device.type == "cuda"
            else "inputs + peak of live tensors created in the forward (weights not included)"
        ),
    )
    started = time.perf_counter()
    batch = 1
    while True:
        if batch > limits.max_batch:
            sweep.stop_reason = f"reached the largest batch asked for ({limits.max_batch})"
            break
        if _predicted_memory(sweep.points, batch) > memory_limit:
            sweep.stop_reason = f"batch {batch} would pass the memory limit"
            break
        elapsed = time.perf_counter() - started
        if sweep.points:
            last = sweep.points[-1]
            # warm-up and a few samples at twice the last latency
            expected = 2 * last.latency_ms / 1e3 * 12 + limits.point_seconds
            if elapsed + expected > limits.seconds:
                sweep.stop_reason = f"batch {batch} would pass the time limit"
                break
        point_start = time.perf_counter() - started
        if progress is not None:
            progress(f"batch sweep: batch {batch}")
        b_args, b_kwargs = with_batch(args, kwargs, batch)
        input_bytes = sum(
            t.numel() * t.element_size()
            for t in [*b_args, *b_kwargs.values()]
            if isinstance(t, torch.Tensor)
        )

        def call(a: tuple[Any, ...] = b_args, k: dict[str, Any] = b_kwargs) -> Any:
            return model(*a, **k)

        try:
            with torch.inference_mode():
                peak = peak_memory(call, device, input_bytes)
                if peak > memory_limit:
                    sweep.stop_reason = f"batch {batch} passed the memory limit"
                    break
                m = measure(
                    call,
                    device,
                    budget_s=limits.point_seconds,
                    warmup_budget_s=limits.point_seconds / 2,
                    min_samples=5,
                )
        except torch.OutOfMemoryError:
            sweep.stop_reason = f"batch {batch} ran out of memory"
            break
        except RuntimeError as exc:
            if "can't allocate memory" not in str(exc) and "out of memory" not in str(exc):
                raise
            sweep.stop_reason = f"batch {batch} ran out of memory"
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        latency = quantile(m.samples_ms, 0.5)
        sweep.points.append(
            SweepPoint(batch, latency, batch / (latency / 1e3), peak, round(point_start, 4))
        )
        if on_point is not None:  # kept by the parent should the next batch be OOM-killed
            on_point(sweep)
        batch *= 2
    sweep.knee_batch = knee([p.batch for p in sweep.points], [p.throughput for p in sweep.points])
    return sweep


def _predicted_memory(points: list[SweepPoint], batch: int) -> float:
    known = [p for p in points if p.peak_memory_bytes is not None]
    if len(known) < 2:
        return 0.0
    a, b = known[-2], known[-1]
    slope = (b.peak_memory_bytes - a.peak_memory_bytes) / (b.batch - a.batch)  # type: ignore[operator]
    return b.peak_memory_bytes + slope * (batch - b.batch)  # type: ignore[operator]
