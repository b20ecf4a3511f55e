"""Rules that read the trace section: GPU utilisation, idle causes, launches, syncs,
copies, communication, stragglers, Tensor Cores, data loading and memory.

Each rule reads ``report.trace`` only (figures defined in reporter/report/trace.py) and
names the numbers, kernels and ops behind a finding in its evidence. Launches and syncs
are judged in launch.py and sync.py, by the same judgement as the profile's launch-bound
and host-sync rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from reporter.report import Finding, Report
from reporter.report.trace import KernelRow, RankFigures, TraceSection
from reporter.rules import launch, sync
from reporter.rules.registry import evidence, rule
from reporter.rules.trace_evidence import gpu_ranks, ms, ms_by_rank, pct, rank_key, rank_suffix
from reporter.trace.ranks import find_stragglers


def _kernel_names(rows: list[KernelRow], n: int = 5) -> list[str]:
    return [
        f"{k.short_name} ({ms(k.total_us)} ms, from {k.launched_by or 'unknown op'})"
        for k in rows[:n]
    ]


def _per_rank(
    trace: TraceSection, value: Callable[[RankFigures], object]
) -> dict[str, object] | None:
    """{"rank N": value(rank)} when there are several ranks (evidence of the spread)."""
    ranks = gpu_ranks(trace)
    if len(ranks) < 2:
        return None
    return {f"rank {r.rank}": value(r) for r in ranks}


@rule(
    "gpu-low-utilisation",
    "GPU busy less than a threshold share of the time",
    reads=("trace",),
    thresholds={"gpu.min_utilisation": 0.5},
    doc="The GPU ran kernels for less than this share of the traced steps (busy time is "
    "the union of kernel intervals). The idle split says why: the CPU not launching work "
    "(host wait), launch latency between tiny kernels, or waits on other streams.",
)
def low_utilisation(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    trace = report.trace
    o = trace.overall
    if not o.has_gpu or o.utilisation is None or o.window_us <= 0:
        return
    limit = th["gpu.min_utilisation"]
    if o.utilisation >= limit:
        return
    b, idle = o.breakdown, o.idle
    cause = ""
    if idle is not None and b is not None and b.idle_us > 0:
        parts = {
            "host wait": idle.host_wait_us,
            "short gaps": idle.short_gap_us,
            "other waits": idle.other_us,
        }
        cause = max(parts, key=lambda k: parts[k])
    yield Finding(
        rule="gpu-low-utilisation",
        severity="critical" if o.utilisation < limit / 2 else "warning",
        title=f"GPU busy only {100 * o.utilisation:.0f}% of the traced time",
        evidence=evidence(
            utilisation=pct(o.utilisation),
            threshold=pct(limit),
            busy_ms=ms(o.gpu_busy_us),
            window_ms=ms(o.window_us),
            idle_ms=ms(b.idle_us) if b else None,
            communication_ms=ms(b.communication_us) if b else None,
            memcpy_ms=ms(b.memcpy_us) if b else None,
            main_idle_cause=cause or None,
            per_rank_utilisation=_per_rank(trace, lambda r: pct(r.gpu.utilisation)),
            top_kernels=_kernel_names(trace.top_kernels, 3),
        ),
        recommendation=(
            "The GPU waits more than it works. Check the idle split: host wait means the "
            "Python/CPU side cannot launch work fast enough (use DataLoader workers with "
            "pin_memory, torch.compile, CUDA graphs, a larger batch); short gaps mean many "
            "tiny kernels (fuse them); communication means collectives are not overlapped."
        ),
        snippet=(
            "model = torch.compile(model)  # fewer, fused kernels\n"
            "loader = DataLoader(ds, batch_size=bs, num_workers=8, pin_memory=True,\n"
            "                    persistent_workers=True)"
        ),
    )


@rule(
    "gpu-idle-host-wait",
    "GPU idle time dominated by waiting for the host to launch work",
    reads=("trace",),
    thresholds={"gpu.host_wait_share": 0.5, "gpu.min_idle_share": 0.1},
    doc="Most of the GPU's idle time falls in gaps where the next kernel had not been "
    "launched yet: the CPU side (Python, data loading, op dispatch) is the bottleneck.",
)
def idle_host_wait(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    o = report.trace.overall
    if not o.has_gpu or o.idle is None or o.breakdown is None or o.window_us <= 0:
        return
    idle = o.breakdown.idle_us
    if idle <= 0 or idle / o.window_us < th["gpu.min_idle_share"]:
        return
    share = o.idle.host_wait_us / idle
    if share < th["gpu.host_wait_share"]:
        return
    ops = [
        f"{op.name} ({ms(op.self_us)} ms self)"
        for r in report.trace.ranks[:1]
        for op in r.cpu_ops[:5]
    ]
    yield Finding(
        rule="gpu-idle-host-wait",
        severity="warning",
        title=f"{100 * share:.0f}% of GPU idle time is waiting for the CPU to launch work",
        evidence=evidence(
            host_wait_ms=ms(o.idle.host_wait_us),
            idle_ms=ms(idle),
            host_wait_share_of_idle=pct(share),
            idle_share_of_window=pct(idle / o.window_us),
            short_gap_ms=ms(o.idle.short_gap_us),
            other_ms=ms(o.idle.other_us),
            top_cpu_ops_by_self_time=ops or None,
        ),
        recommendation=(
            "The GPU finishes its queue and waits for the next launch. Reduce host work per "
            "step: move data preparation into DataLoader workers, avoid Python loops over "
            "tensors, remove host-device syncs, and cut launch overhead with torch.compile "
            "or CUDA graphs; a larger batch gives the GPU more work per launch."
        ),
        snippet='model = torch.compile(model, mode="reduce-overhead")  # CUDA graphs',
    )


@rule(
    "gpu-launch-bound",
    "Many tiny kernels launched back to back (launch-bound)",
    reads=("trace",),
    thresholds={
        "gpu.tiny_kernel_share": 0.5,
        "gpu.shorter_than_launch_share": 0.3,
        "gpu.launch_bound_max_queue_us": 100.0,
        "gpu.min_kernels": 100,
    },
    doc="Kernels shorter than ~10 µs or shorter than the cudaLaunchKernel call that "
    "started them, while the launch queue is nearly empty (kernels start right after "
    "their launch): the CPU's launch rate limits the GPU.",
)
def launch_bound(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    return launch.trace_findings(report, th)


@rule(
    "gpu-host-sync",
    "Host-device synchronisations inside the training/inference step",
    reads=("trace",),
    thresholds={"gpu.max_syncs_per_step": 0, "gpu.sync_time_share": 0.05},
    doc="cudaDeviceSynchronize/StreamSynchronize, .item(), .cpu() and nonzero() make the "
    "CPU wait until the GPU catches up, draining the launch queue. The advice follows the "
    "kinds of sync the trace found (see host-sync).",
)
def host_sync(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    return sync.trace_findings(report, th)


@rule(
    "gpu-pageable-memcpy",
    "Host-device copies from or to pageable (unpinned) memory",
    reads=("trace",),
    thresholds={"gpu.pageable_min_bytes": 1_048_576},
    doc="Copies between the GPU and pageable host memory are staged through a driver "
    "buffer and cannot overlap with compute; pinned memory makes them faster and async.",
)
def pageable_memcpy(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    ranks = [r for r in gpu_ranks(report.trace) if r.gpu.memcpy.pageable_count]
    total_bytes = sum(r.gpu.memcpy.pageable_bytes for r in ranks)
    if not ranks or total_bytes < th["gpu.pageable_min_bytes"]:
        return
    count = sum(r.gpu.memcpy.pageable_count for r in ranks)
    time_us = sum(r.gpu.memcpy.pageable_us for r in ranks)
    directions = sorted(
        {
            f"{row.direction} ({row.source} -> {row.destination})"
            for r in ranks
            for row in r.gpu.memcpy.rows
            if "Pageable" in (row.source, row.destination)
        }
    )
    yield Finding(
        rule="gpu-pageable-memcpy",
        severity="warning",
        title=f"{count} copies ({total_bytes / 2**20:.1f} MiB) use pageable host memory",
        evidence=evidence(
            copies=count,
            bytes=total_bytes,
            copy_ms=ms(time_us),
            directions=directions,
            ranks=[r.rank for r in ranks] if len(report.trace.ranks) > 1 else None,
        ),
        recommendation=(
            "Pin host buffers so copies run asynchronously and at full bandwidth: "
            "DataLoader(pin_memory=True) for inputs, tensor.pin_memory() for buffers you "
            "reuse, and .to(device, non_blocking=True)."
        ),
        snippet=(
            "loader = DataLoader(ds, batch_size=bs, pin_memory=True, num_workers=4)\n"
            "x = x.to('cuda', non_blocking=True)"
        ),
    )


@rule(
    "gpu-communication",
    "Collective communication takes a large share of the step or is poorly overlapped",
    reads=("trace",),
    thresholds={"gpu.max_comm_share": 0.10, "gpu.max_exposed_comm_share": 0.05},
    doc="NCCL kernels that run while no compute kernel runs stall the step. Overlap them "
    "(DDP bucketing, FSDP prefetch) or send less (gradient compression, larger buckets).",
)
def communication(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    for r in gpu_ranks(report.trace):
        c = r.gpu.communication
        if c.kernels == 0 or r.window_us <= 0:
            continue
        exposed_share = c.exposed_us / r.window_us
        too_much = c.share_of_window > th["gpu.max_comm_share"]
        exposed = exposed_share > th["gpu.max_exposed_comm_share"]
        if not (too_much or exposed):
            continue
        yield Finding(
            rule="gpu-communication",
            severity="warning" if exposed else "info",
            title=(
                f"Communication is {100 * c.share_of_window:.0f}% of the step, "
                f"{100 * c.overlap_share:.0f}% overlapped with compute"
                + rank_suffix(report.trace.ranks, r)
            ),
            evidence=evidence(
                rank=rank_key(report.trace.ranks, r),
                communication_ms=ms(c.total_us),
                exposed_ms=ms(c.exposed_us),
                overlapped_ms=ms(c.overlapped_us),
                share_of_window=pct(c.share_of_window),
                exposed_share_of_window=pct(exposed_share),
                overlap_share=pct(c.overlap_share),
                collectives=[
                    f"{n.name} ×{n.count} ({ms(n.total_us)} ms)" for n in c.collectives[:5]
                ],
            ),
            recommendation=(
                "Overlap collectives with computation and send fewer, larger messages: for "
                "DDP tune bucket_cap_mb and keep gradient_as_bucket_view=True; for FSDP enable "
                "forward/backward prefetch; check that one rank is not late (stragglers make "
                "the others wait inside NCCL kernels)."
            ),
            snippet=(
                "model = DDP(model, bucket_cap_mb=50, gradient_as_bucket_view=True,\n"
                "            static_graph=True)"
            ),
        )


@rule(
    "gpu-straggler",
    "One rank computes noticeably longer than the others",
    reads=("trace",),
    thresholds={"gpu.straggler_excess": 0.10},
    doc="In synchronous training every rank waits for the slowest one at each collective. "
    "A rank whose compute per step exceeds the median of the others holds them all up.",
)
def straggler(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    ranks = report.trace.ranks
    if len(ranks) < 2:
        return
    limit = th["gpu.straggler_excess"]
    compute = {r.rank: r.compute_per_step_us for r in ranks if r.compute_per_step_us}
    steps = {r.rank: r.step_time_us for r in ranks if r.step_time_us}
    found = find_stragglers(compute, limit, "compute_per_step_us") if len(compute) > 1 else []
    if not found:
        found = find_stragglers(steps, limit, "step_time_us")
    for s in found:
        yield Finding(
            rule="gpu-straggler",
            severity="warning",
            title=(
                f"Rank {s.rank} is a straggler: {100 * s.excess:.0f}% more "
                + ("GPU compute" if s.metric == "compute_per_step_us" else "step time")
                + " per step than the other ranks"
            ),
            evidence=evidence(
                rank=s.rank,
                metric=s.metric,
                value_ms=ms(s.value_us),
                others_median_ms=ms(s.others_median_us),
                excess=pct(s.excess),
                threshold=pct(limit),
                compute_per_step_ms=ms_by_rank(compute) or None,
                step_time_ms=ms_by_rank(steps) or None,
            ),
            recommendation=(
                "Find why this rank does more work: uneven data shards or sequence lengths "
                "(balance or bucket them), embedding tables or experts placed unevenly, a "
                "slower or throttled GPU, or extra work on rank 0 (logging, checkpointing)."
            ),
            snippet=(
                "# compare per-rank work: log the batch's token count on every rank\n"
                "print(dist.get_rank(), batch['input_ids'].numel())"
            ),
            target=f"rank {s.rank}",
        )


@rule(
    "gpu-fp32-no-tensor-cores",
    "fp32 matmul/convolution kernels not running on Tensor Cores",
    reads=("trace",),
    thresholds={"gpu.min_non_tensor_core_share": 0.10},
    doc="On a GPU with Tensor Cores (compute capability >= 7.0), GEMM and convolution "
    "kernels that run in plain fp32 leave most of the GPU's math throughput unused.",
)
def fp32_no_tensor_cores(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    for r in gpu_ranks(report.trace):
        tc = r.gpu.tensor_cores
        if not tc.available or tc.not_tensor_core_share < th["gpu.min_non_tensor_core_share"]:
            continue
        major = int(r.compute_capability.split(".")[0]) if r.compute_capability else None
        ampere = major is not None and major >= 8
        kernels = _kernel_names(tc.top_not_tensor_core, 5)
        ops = sorted({k.launched_by for k in tc.top_not_tensor_core if k.launched_by})
        yield Finding(
            rule="gpu-fp32-no-tensor-cores",
            severity="warning",
            title=(
                f"{100 * tc.not_tensor_core_share:.0f}% of kernel time is fp32 matmul/conv "
                f"not on Tensor Cores" + (f" ({r.device_name})" if r.device_name else "")
            ),
            evidence=evidence(
                rank=rank_key(report.trace.ranks, r),
                device=r.device_name or None,
                compute_capability=r.compute_capability or None,
                not_tensor_core_ms=ms(tc.not_tensor_core_us),
                not_tensor_core_share=pct(tc.not_tensor_core_share),
                tensor_core_share=pct(tc.share),
                kernels=kernels,
                ops=ops or None,
            ),
            recommendation=(
                "Run matmuls and convolutions in reduced precision on the Tensor Cores: "
                + (
                    "allow TF32 for fp32 matmuls (torch.set_float32_matmul_precision('high')) "
                    "or use bf16 autocast."
                    if ampere
                    else "use fp16 autocast with a GradScaler (this GPU has no TF32/bf16)."
                )
                + " Keep channel sizes multiples of 8."
            ),
            snippet=(
                "torch.set_float32_matmul_precision('high')  # TF32\n"
                "with torch.autocast('cuda', dtype=torch.bfloat16):\n"
                "    loss = model(x).loss"
                if ampere
                else "scaler = torch.amp.GradScaler('cuda')\n"
                "with torch.autocast('cuda', dtype=torch.float16):\n"
                "    loss = model(x).loss\n"
                "scaler.scale(loss).backward()"
            ),
            target=tc.top_not_tensor_core[0].short_name if tc.top_not_tensor_core else None,
        )


@rule(
    "gpu-dataloader",
    "Data loading takes a large share of the step",
    reads=("trace",),
    thresholds={"gpu.max_dataloader_share": 0.05},
    doc="Exposed data loading: time in DataLoader/DataPipe iteration (or ranges annotated as "
    "data loading) inside the traced steps while no kernel, memcpy or memset ran "
    "(tb-profiler's DataLoader time).",
)
def dataloader(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    for r in report.trace.ranks:
        share = r.dataloader_exposed_share
        if share is None or share <= th["gpu.max_dataloader_share"]:
            continue
        yield Finding(
            rule="gpu-dataloader",
            severity="warning",
            title=f"Data loading with the GPU idle takes {100 * share:.0f}% of the traced steps"
            + rank_suffix(report.trace.ranks, r),
            evidence=evidence(
                rank=rank_key(report.trace.ranks, r),
                dataloader_ms=ms(r.dataloader_us),
                exposed_ms=ms(r.dataloader_exposed_us),
                window_ms=ms(r.window_us),
                share=pct(r.dataloader_share or 0.0),
                exposed_share=pct(share),
                threshold=pct(th["gpu.max_dataloader_share"]),
                per_step_ms=[ms(s.dataloader_exposed_us) for s in r.steps] or None,
            ),
            recommendation=(
                "Load and augment data in parallel and ahead of time: more DataLoader "
                "workers, persistent_workers=True, prefetch_factor, pin_memory=True; move "
                "heavy decoding or augmentation to the GPU or to preprocessing."
            ),
            snippet=(
                "loader = DataLoader(ds, batch_size=bs, num_workers=8, pin_memory=True,\n"
                "                    persistent_workers=True, prefetch_factor=4)"
            ),
        )


@rule(
    "gpu-memory-near-capacity",
    "Peak GPU memory close to the device's capacity",
    reads=("trace",),
    thresholds={"gpu.max_memory_share": 0.9},
    doc="From the profiler's memory events (profile_memory=True): the allocated peak "
    "against deviceProperties' totalGlobalMem. Near the limit, fragmentation or a longer "
    "input causes out-of-memory errors.",
)
def memory_near_capacity(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    for r in report.trace.ranks:
        for m in r.memory:
            if m.share is None or m.share <= th["gpu.max_memory_share"]:
                continue
            yield Finding(
                rule="gpu-memory-near-capacity",
                severity="critical" if m.share > 0.97 else "warning",
                title=f"Peak memory on {m.device} is {100 * m.share:.0f}% of its capacity",
                evidence=evidence(
                    rank=rank_key(report.trace.ranks, r),
                    device=m.device,
                    peak_allocated_bytes=m.peak_allocated_bytes,
                    peak_reserved_bytes=m.peak_reserved_bytes,
                    capacity_bytes=m.capacity_bytes,
                    share=pct(m.share),
                ),
                recommendation=(
                    "Lower the activation memory: activation checkpointing on the largest "
                    "blocks, bf16/fp16 autocast, a smaller micro-batch with gradient "
                    "accumulation, or sharding optimizer state (ZeRO/FSDP)."
                ),
                snippet=(
                    "from torch.utils.checkpoint import checkpoint\n"
                    "h = checkpoint(block, h, use_reentrant=False)"
                ),
                target=m.device,
            )
