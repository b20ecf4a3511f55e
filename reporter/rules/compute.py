"""Rules that read the profile and timing sections: where the time goes.

Launch-bound and host-sync are judged in launch.py and sync.py, by the same judgement as
their trace variants in gpu.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from reporter.profiling.stats import NOISY_CV, NOISY_TAIL, noise_reason, quantile
from reporter.report import Finding, Report
from reporter.report.profile import ModuleTime, TimingSection
from reporter.rules import launch, sync
from reporter.rules.margin import MARGIN_THRESHOLD, noise
from reporter.rules.registry import evidence, rule
from reporter.units import percent


@rule(
    "hot-module",
    "One module takes most of the step",
    reads=["profile"],
    thresholds={"compute.hot_module_share": 0.4, **MARGIN_THRESHOLD},
    doc="The deepest module whose forward takes more than this share of a step is where "
    "optimisation pays first. A module whose time is spread over its children (none holds "
    "half of it, nor does its own code) is the model's body, not a hotspot, and is not "
    "flagged: GPT-2's transformer holds 12 blocks of about 6% each. Interference only adds "
    "time, so the mean step's excess over the quickest profiled step bounds what noise "
    "added to any figure; a share is flagged only when, with that excess taken out of "
    "the module and the step, it still clears the threshold by rules.min_margin (5% of "
    "it). Nearer than that nothing is said, so two runs of the same model agree. With "
    "one profiled step there is no quickest step, and with a mean step more than "
    "rules.max_step_excess (25%) above the quickest the profile was disturbed: time "
    "shares are then not judged at all. A "
    "module repeated three or more times (same type and parameter count, blocks.*.attn) "
    "counts at most the median time of its repeats.",
)
def hot_module(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    limit = th["compute.hot_module_share"]
    n = noise(report.profile, th)
    modules = report.profile.modules
    params = {r.name: r.params for r in report.summary.layers} if report.summary else {}
    typical = _typical_us(modules, params)
    hot = [m for m in modules if m.depth >= 1 and n.share_above(typical[m.name], n.step_us, limit)]
    if not hot:
        return []
    top = max(hot, key=lambda m: (m.depth, m.share))  # the most specific culprit
    if _spread_over_children(top, modules):
        return []  # its ancestors hold the same children: no more specific culprit either
    return [
        Finding(
            rule="hot-module",
            severity="warning",
            title=f"`{top.name}` ({top.type}) takes {percent(top.share)} of each step",
            evidence=evidence(
                module=top.name,
                type=top.type,
                time_per_step=f"{top.total_us / 1000:.3f} ms",
                self_time=f"{top.self_us / 1000:.3f} ms",
                share=percent(top.share),
                calls_per_step=top.calls,
                share_without_noise=n.describe(typical[top.name], n.step_us),
            ),
            recommendation="Look at this module first: its size, its dtype, and whether "
            "its ops fuse (torch.compile) or can run at lower precision.",
            snippet=f"model.{top.name} = torch.compile(model.{top.name})",
            target=top.name,
        )
    ]


def _typical_us(modules: list[ModuleTime], params: dict[str, int]) -> dict[str, float]:
    """Each module's time per step, or the median time of the repeats it belongs to when
    that is lower. Repeats share a type, a parameter count (from the summary) and a path
    up to block indices (blocks.0.attn, blocks.1.attn, ...: blocks.*.attn); three or more
    of them do the same work, and one far slower than its twins was disturbed (measured:
    one of GPT's four equal blocks at 52% of a step on a loaded machine)."""
    groups: dict[tuple[str, str, int], list[float]] = {}
    for m in modules:
        if m.name in params:
            groups.setdefault(_repeat_key(m, params), []).append(m.total_us)
    out = {}
    for m in modules:
        times = groups.get(_repeat_key(m, params), []) if m.name in params else []
        out[m.name] = min(m.total_us, quantile(times, 0.5)) if len(times) >= 3 else m.total_us
    return out


def _repeat_key(m: ModuleTime, params: dict[str, int]) -> tuple[str, str, int]:
    path = re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)", "*", m.name)
    return m.type, path, params.get(m.name, -1)


def _spread_over_children(module: ModuleTime, modules: list[ModuleTime]) -> bool:
    """Neither one profiled child nor the module's own code holds half of its time."""
    profiled = {m.name for m in modules}
    # Its children in the profile are the modules whose nearest profiled ancestor it is (a
    # ModuleList is never called, so GPT-2's blocks sit two levels below the transformer).
    children = [m for m in modules if m.name and _profiled_parent(m.name, profiled) == module.name]
    if not children:
        return False
    half = module.total_us / 2
    return module.self_us < half and max(c.total_us for c in children) < half


def _profiled_parent(name: str, profiled: set[str]) -> str:
    """The nearest enclosing module of ``name`` that has a profile row ("" is the model)."""
    while "." in name:
        name = name.rsplit(".", 1)[0]
        if name in profiled:
            return name
    return ""


@rule(
    "memory-bound-ops",
    "Elementwise and reduction ops dominate",
    reads=["profile"],
    thresholds={"compute.memory_bound_share": 0.4},
    doc="Elementwise ops and reductions move memory and do little arithmetic; when they "
    "take most of the time, fusing them (torch.compile) is the usual fix. The share must "
    "clear the threshold with the step's noise taken out (see hot-module). When the "
    "roofline stage ran, fusion-candidate judges each op against the bandwidth instead.",
)
def memory_bound(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    if report.roofline is not None:
        return []  # the roofline judges each op against bandwidth (fusion-candidate)
    cats = report.profile.kernel_categories_us or report.profile.categories_us
    total = sum(cats.values())
    bound = cats.get("elementwise", 0.0) + cats.get("reductions", 0.0)
    n = noise(report.profile, th)
    if not total or not n.share_above(bound, total, th["compute.memory_bound_share"]):
        return []
    return [
        Finding(
            rule="memory-bound-ops",
            severity="warning",
            title=f"Elementwise ops and reductions take {percent(bound / total)} of op time",
            evidence=evidence(
                elementwise=f"{cats.get('elementwise', 0.0) / 1000:.3f} ms",
                reductions=f"{cats.get('reductions', 0.0) / 1000:.3f} ms",
                matmul_conv=f"{cats.get('matmul/conv', 0.0) / 1000:.3f} ms",
                per="step",
                share_without_noise=n.describe(bound, total),
            ),
            recommendation="Fuse them: torch.compile generates one kernel for chains of "
            "elementwise ops; check with --experiments --experiment-compile.",
            snippet="model = torch.compile(model)",
        )
    ]


@rule(
    "launch-bound",
    "Many tiny ops: overhead-bound",
    reads=["profile"],
    thresholds={"compute.tiny_op_us": 20.0, "compute.tiny_op_calls": 200},
    doc="When a step runs hundreds of ops that each take a few microseconds, Python and "
    "dispatch overhead dominate: batch more work per op. Noise only lengthens ops, so a "
    "mean below the threshold (by rules.min_margin) is one for sure; two profiled steps "
    "at least. When the roofline stage ran, overhead-bound judges each op against one "
    "call's measured cost instead.",
)
def launch_bound(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    return launch.profile_findings(report, th)


@rule(
    "host-sync",
    "Host-device synchronisation in the step",
    reads=["profile"],
    doc="On a CUDA device, ops that make the host wait for the device (a "
    "cudaStreamSynchronize, cudaDeviceSynchronize or blocking cudaMemcpy in the profiled "
    "step) drain the launch queue and stop torch.compile from capturing one graph. The "
    "advice follows the ops that synced: data-dependent shapes (nonzero, boolean-mask "
    "indexing), .item() in a loop, a Python condition on a tensor, copies to the host "
    "(.cpu(), .tolist()), or Hugging Face's padding check. On the CPU an .item() waits "
    "for nothing, so CPU profiles are not flagged. The profile stage's own "
    "torch.cuda.synchronize() after each step is not counted.",
)
def host_sync(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    return sync.profile_findings(report, th)


@rule(
    "throughput-still-rising",
    "Throughput still grows with the batch size",
    reads=["timing"],
    thresholds={"compute.batch_gain": 1.2},
    doc="From --batch-sweep: when a larger batch gives clearly more samples per second, the "
    "chosen batch leaves the hardware idle.",
)
def still_rising(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    sweep = report.timing.sweep
    if sweep is None or not sweep.points:
        return []
    current = report.timing.batch_size
    here = next((p for p in sweep.points if p.batch == current), None)
    best = max(sweep.points, key=lambda p: p.throughput)
    if (
        here is None
        or best.batch <= current
        or best.throughput < th["compute.batch_gain"] * here.throughput
    ):
        return []
    return [
        Finding(
            rule="throughput-still-rising",
            severity="info",
            title=f"Batch {best.batch} gives {best.throughput / here.throughput:.1f}× the "
            f"throughput of batch {current}",
            evidence=evidence(
                batch=current,
                throughput=f"{here.throughput:,.0f} samples/s",
                best_batch=best.batch,
                best_throughput=f"{best.throughput:,.0f} samples/s",
                knee_batch=sweep.knee_batch,
            ),
            recommendation=f"Serve or train with batches near {sweep.knee_batch or best.batch} "
            "if latency allows.",
            snippet=f"DataLoader(dataset, batch_size={sweep.knee_batch or best.batch})",
        )
    ]


@rule(
    "noisy-timing",
    "Latency measurement is noisy",
    reads=["timing"],
    doc="A wide spread means the machine was busy or the model's time varies; compare such "
    "figures with care. A spread that only just passes the timing stage's limits (the "
    "coefficient of variation or p99 / median within `timing.noise_margin` of them) is "
    "shown in the timing section but not reported as a finding, so two runs of the same "
    "model agree; other causes (too few samples, oversubscribed CPUs) always are.",
    thresholds={"timing.noise_margin": 0.25},
)
def noisy(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    timing = report.timing
    if not timing.noisy or _spread_near_limits(timing, th["timing.noise_margin"]):
        return []
    return [
        Finding(
            rule="noisy-timing",
            severity="info",
            title="The latency measurement is noisy",
            evidence=evidence(
                reason=timing.noise_reason,
                median=f"{timing.latency_ms.median:.3f} ms",
                p99=f"{timing.latency_ms.p99:.3f} ms",
                cv=percent(timing.latency_ms.cv),
            ),
            recommendation="Re-run on an idle machine, pin threads (torch.set_num_threads), or "
            "measure longer (--timing-seconds).",
        )
    ]


def _spread_near_limits(timing: TimingSection, margin: float) -> bool:
    """Noisy only by a spread within ``margin`` above the noise limits (no other cause)."""
    if timing.noise_reason != noise_reason(timing.latency_ms):
        return False  # another cause (few samples, oversubscription) is named too
    latency = timing.latency_ms
    tail = latency.p99 / latency.median if latency.median > 0 else 0.0
    return latency.cv <= NOISY_CV * (1 + margin) and tail <= NOISY_TAIL * (1 + margin)


@rule(
    "fp32-matmul-on-gpu",
    "float32 matmuls and convolutions on a Tensor-Core GPU",
    reads=["profile"],
    thresholds={"compute.matmul_share": 0.3},
    doc="Tensor Cores run bf16/fp16 (and TF32) many times faster than full fp32. The "
    "matmul share must clear the threshold with the step's noise taken out (see hot-module).",
)
def fp32_on_gpu(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    if not report.profile.device.startswith("cuda"):
        return []
    params = report.model.parameters
    if params is None or set(params.by_dtype) - {"float32"}:
        return []
    cuda = report.environment.cuda or {}
    if cuda.get("tf32_matmul") or cuda.get("float32_matmul_precision") in ("high", "medium"):
        return []
    cats = report.profile.kernel_categories_us or report.profile.categories_us
    total = sum(cats.values())
    matmul = cats.get("matmul/conv", 0.0)
    share = matmul / total if total else 0.0
    n = noise(report.profile, th)
    if not n.share_above(matmul, total, th["compute.matmul_share"]):
        return []
    return [
        Finding(
            rule="fp32-matmul-on-gpu",
            severity="warning",
            title=f"Matmuls and convolutions ({percent(share)} of GPU time) run in full fp32",
            evidence=evidence(
                matmul_conv_share=percent(share),
                share_without_noise=n.describe(matmul, total),
                tf32=cuda.get("tf32_matmul"),
                float32_matmul_precision=cuda.get("float32_matmul_precision"),
            ),
            recommendation="Use bf16 autocast, or at least allow TF32.",
            snippet="torch.set_float32_matmul_precision('high')\n"
            "with torch.autocast('cuda', dtype=torch.bfloat16):\n    y = model(x)",
        )
    ]


@rule(
    "cudnn-benchmark-off",
    "Convolutions on a GPU without cudnn.benchmark",
    reads=["timing", "summary"],
    doc="With fixed input shapes, cudnn.benchmark picks the fastest convolution algorithm.",
)
def cudnn_off(report: Report, th: dict[str, float]) -> Iterable[Finding]:
    if not report.model.device.startswith("cuda"):
        return []
    if not any(r.type.startswith("Conv") for r in report.summary.layers):
        return []
    if (report.environment.cuda or {}).get("cudnn_benchmark"):
        return []
    return [
        Finding(
            rule="cudnn-benchmark-off",
            severity="info",
            title="cudnn.benchmark is off for a convolutional model on a GPU",
            evidence=evidence(cudnn_benchmark=False),
            recommendation="Turn it on when input shapes are fixed; also try channels_last.",
            snippet="torch.backends.cudnn.benchmark = True\n"
            "model = model.to(memory_format=torch.channels_last)",
        )
    ]
