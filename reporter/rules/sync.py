"""Host-sync: host-device synchronisations inside the step, each of which makes the host
wait for the device and drains the launch queue.

One judgement (`sync_severity`) on one measure (`SyncMeasure`), read from either source:

- the model's profile (rule host-sync): the synchronising CUDA runtime calls per step
  (perfreport's own one after each step left out) and the framework ops that explain them;
- a trace (rule gpu-host-sync, per rank): the syncs the trace analysis found, inside the
  ProfilerSteps when there are steps, with the host time they took and where they came from.

A sync has several causes that need different fixes: a data-dependent shape (nonzero,
boolean-mask indexing, masked_select, unique) cannot be cured by "keep values on the
device", and an `.item()` read inside a Python loop needs vectorising, not logging less.
`sync_advice` maps the ops that synced to a cause and its fix, for both sources. The rules
are registered in compute.py and gpu.py among the rules reading the same section: the
registry's order is the order of findings of equal severity in the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from reporter.report import Finding, Report
from reporter.report.profile import OpTime, ProfileSection
from reporter.report.trace import RankFigures
from reporter.rules.registry import evidence, numbered
from reporter.rules.trace_evidence import gpu_ranks, ms, pct, rank_key, rank_suffix

# Ops whose output size depends on the data: the host must learn the size before it can
# allocate the result, so it waits for the device.
DATA_DEPENDENT = frozenset(
    {
        "aten::nonzero",
        "aten::nonzero_numpy",
        "aten::masked_select",
        "aten::unique",
        "aten::_unique",
        "aten::_unique2",
        "aten::unique_dim",
        "aten::unique_consecutive",
        "aten::argwhere",
    }
)
SCALAR_READS = frozenset({"aten::item", "aten::_local_scalar_dense"})
TRUTH_TESTS = frozenset({"aten::is_nonzero"})  # bool(t): `if t:`, `assert t`, `and`/`or`
READ_CHAIN = ("aten::_local_scalar_dense", "aten::item", "aten::is_nonzero")
COPIES = frozenset({"DtoH copy", "aten::_to_copy", "aten::to", "aten::copy_", "aten::cpu"})
EXPLICIT = frozenset({"cudaDeviceSynchronize"})
# Scalar reads per step above this come from a loop, not from one check.
LOOP_CALLS = 4
# Runtime calls that block the host until the device catches up: a device sync happened.
DEVICE_SYNCS = frozenset(
    {"cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy"}
)
# Framework ops that explain why (read with the runtime calls above).
SYNC_CAUSES = DATA_DEPENDENT | SCALAR_READS | TRUTH_TESTS | {"aten::index"}
# stages/profile.py synchronises once after each step so that the step's range covers its
# GPU work: that call is perfreport's, not the model's.
OWN_SYNCS_PER_STEP = 1


@dataclass(frozen=True)
class SyncMeasure:
    """The host-device synchronisations of a step, and what made them."""

    syncs: int  # synchronisations counted
    per_step: float | None = None  # syncs per step, when steps were seen
    time_us: float | None = None  # host time spent in them, when timed
    window_us: float | None = None  # the time they were counted in
    synced: tuple[tuple[str, int], ...] = ()  # (op or runtime call, calls per step)
    dtoh_copies: bool = False  # device-to-host copies seen (.cpu(), .tolist())
    # input_ids without attention_mask: a Hugging Face model then checks for padding
    # (pad_token_id in input_ids), one value read back on every forward
    hf_without_mask: bool = False

    @property
    def time_share(self) -> float | None:
        if self.time_us is None or not self.window_us:
            return None
        return self.time_us / self.window_us


@dataclass(frozen=True)
class SyncLimits:
    max_per_step: float = 0.0  # syncs per step allowed: any one is flagged by default
    warning_share: float = 0.0  # of the window: timed syncs below it are info only


def sync_severity(m: SyncMeasure, limits: SyncLimits) -> str | None:
    """None when the step does not wait for the device more often than allowed; else a
    warning, or info when the syncs were timed and took little of the window (an untimed
    sync counts at its worst: each one drains the launch queue)."""
    if m.syncs <= 0 or (m.per_step is not None and m.per_step <= limits.max_per_step):
        return None
    share = m.time_share
    return "info" if share is not None and share < limits.warning_share else "warning"


@dataclass(frozen=True)
class SyncAdvice:
    cause: str  # short label for titles and evidence
    recommendation: str
    snippet: str


def sync_advice(m: SyncMeasure) -> SyncAdvice:
    """The advice for what synced (the measure's ops and calls per step, whether
    device-to-host copies were seen, whether a Hugging Face model ran its padding check),
    the most specific cause first."""
    calls = dict(m.synced)
    names = set(calls)
    if names & DATA_DEPENDENT:
        which = ", ".join(sorted(names & DATA_DEPENDENT))
        masked = "aten::index" in names or "aten::masked_select" in names
        return SyncAdvice(
            cause=f"data-dependent shapes ({which}"
            + (", from boolean-mask indexing" if masked else "")
            + ")",
            recommendation=(
                f"{which} produce a result whose size depends on the data, so the host "
                "waits for the device to learn it"
                + (" (x[mask] runs nonzero on the mask)" if masked else "")
                + ". Keep shapes static: select with torch.where or masked_fill instead of "
                "indexing by a mask, take a fixed number of candidates with topk, or give "
                "the largest size with torch.nonzero_static(size=...). Where a variable "
                "size is needed (detection post-processing), do it once per step, after "
                "the heavy layers."
            ),
            snippet=(
                "x = torch.where(mask, x, torch.zeros_like(x))  # instead of x[mask]\n"
                "idx = torch.nonzero_static(mask.flatten(), size=k, fill_value=-1)"
            ),
        )
    # Every scalar read ends in _local_scalar_dense (bool(t) calls item, item calls it):
    # count the innermost one present, not their sum.
    reads = next((calls[n] for n in READ_CHAIN if calls.get(n)), 0)
    tests = calls.get("aten::is_nonzero", 0)
    if reads and m.hf_without_mask and reads <= 2:
        return SyncAdvice(
            cause="the padding check of a Hugging Face model called without attention_mask",
            recommendation=(
                "Called with input_ids and no attention_mask, a Hugging Face model checks "
                "whether the input holds padding (pad_token_id in input_ids), which reads "
                "a value back from the device on every forward. Pass the attention mask."
            ),
            snippet="out = model(input_ids=ids, attention_mask=torch.ones_like(ids))",
        )
    if tests and 2 * tests >= reads:
        return SyncAdvice(
            cause="a Python condition on a tensor value (bool(tensor))",
            recommendation=(
                "`if tensor:`, `assert (x > 0).all()` or `x in t` read a value back from the "
                "device to decide in Python. Compute both branches and select with "
                "torch.where, or move the check out of the step (validate once, or every N "
                "steps)."
            ),
            snippet="y = torch.where(cond, a, b)  # instead of: y = a if cond else b",
        )
    if reads > LOOP_CALLS:
        return SyncAdvice(
            cause=f".item() in a loop ({reads} reads per step)",
            recommendation=(
                f"{reads} scalar reads per step: a Python loop reads one value at a time, "
                "each a full host-device round trip. Vectorise the loop into tensor ops, or "
                "collect the values in a tensor and read it once (.tolist() after the loop)."
            ),
            snippet="values = torch.stack(per_item)  # one tensor, no sync\n"
            "result = values.tolist()  # one read, after the loop",
        )
    if reads:
        return SyncAdvice(
            cause=".item() / float() / int() on a device tensor",
            recommendation=(
                "Keep values on the device: accumulate losses and metrics as tensors and "
                "read them (.item(), print) every N steps only."
            ),
            snippet="loss_sum += loss.detach()  # instead of loss.item() every step\n"
            "if step % 100 == 0:\n    print(loss_sum.item() / 100); loss_sum.zero_()",
        )
    if m.dtoh_copies or names & COPIES:
        return SyncAdvice(
            cause="copies to the host (.cpu(), .tolist(), .numpy())",
            recommendation=(
                "Results copied to the host wait for the device. Keep them on the device "
                "until the end of the step, copy whole tensors once (not element by "
                "element with .tolist()), and use non_blocking=True into pinned memory "
                "with one synchronisation where the values are needed."
            ),
            snippet="host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)\n"
            "host.copy_(y, non_blocking=True)  # synchronise once, where it is read",
        )
    if names & EXPLICIT:
        return SyncAdvice(
            cause="explicit torch.cuda.synchronize()",
            recommendation=(
                "torch.cuda.synchronize() inside the step drains the launch queue. Remove "
                "it, and time with CUDA events (elapsed_time) instead."
            ),
            snippet="start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))\n"
            "start.record(); y = model(x); end.record()",
        )
    if "cudaEventSynchronize" in names:
        return SyncAdvice(
            cause="waits on CUDA events (event.synchronize(), or a library such as DDP "
            "waiting for its own work)",
            recommendation=(
                "The host waits on a CUDA event. In your own code, make the consuming stream "
                "wait instead (stream.wait_event(event)) so the host never blocks; inside a "
                "library, check the caller shown in the evidence and the library's "
                "overlap settings."
            ),
            snippet="torch.cuda.current_stream().wait_event(event)  # not event.synchronize()",
        )
    return SyncAdvice(
        cause="stream synchronisation",
        recommendation=(
            "Keep values on the device inside the step and read them every N steps only; "
            "copy results with non_blocking=True into pinned memory."
        ),
        snippet="loss_sum += loss.detach()  # instead of loss.item() every step",
    )


# ---------------------------------------------------------------- the model's profile
def profile_measure(report: Report) -> SyncMeasure:
    """The profile's synchronising runtime calls per step and the ops around them. On the
    CPU there are none: a CPU tensor's .item() waits for nothing."""
    profile = report.profile
    if not profile.device.startswith("cuda"):
        return SyncMeasure(syncs=0)
    runtime = _runtime_syncs(profile)
    syncs = sum(runtime.values())
    return SyncMeasure(
        syncs=syncs,
        per_step=syncs,  # the profile's calls are per step
        synced=tuple([(o.name, o.calls) for o in _causes(profile)] + list(runtime.items())),
        dtoh_copies=any("DtoH" in k.name for k in profile.kernels),
        hf_without_mask=_hf_without_mask(report),
    )


def profile_findings(report: Report, th: dict[str, float]) -> list[Finding]:
    """Rule host-sync (the profile's rule has no thresholds: any sync is one too many)."""
    m = profile_measure(report)
    severity = sync_severity(m, SyncLimits())
    if severity is None:
        return []
    profile = report.profile
    advice = sync_advice(m)
    lines = [f"{o.name}: {o.calls} call(s) per step, {o.self_us:.1f} µs" for o in _causes(profile)]
    lines += [f"{name}: {n} call(s) per step" for name, n in _runtime_syncs(profile).items()]
    return [
        Finding(
            rule="host-sync",
            severity=severity,
            title=f"The step waits for the device: {advice.cause}",
            evidence=evidence(
                cause=advice.cause,
                **numbered("op", lines),
                copies="device-to-host memcpy in the step" if m.dtoh_copies else None,
            ),
            recommendation=advice.recommendation,
            snippet=advice.snippet,
        )
    ]


def _runtime_syncs(profile: ProfileSection) -> dict[str, int]:
    """Synchronising runtime calls per step, perfreport's own sync after each step left out."""
    runtime = {
        o.name: o.calls - (OWN_SYNCS_PER_STEP if o.name == "cudaDeviceSynchronize" else 0)
        for o in profile.ops_by_name
        if o.name in DEVICE_SYNCS
    }
    return {name: n for name, n in runtime.items() if n > 0}


def _causes(profile: ProfileSection) -> list[OpTime]:
    """The framework ops that explain the syncs."""
    ops = [o for o in profile.ops_by_name if o.name in SYNC_CAUSES]
    if not any(o.name in DATA_DEPENDENT for o in ops):
        ops = [o for o in ops if o.name != "aten::index"]  # plain indexing does not sync
    return ops


def _hf_without_mask(report: Report) -> bool:
    """Inputs with input_ids and no attention_mask: a Hugging Face model then checks for
    padding on every forward (one value read back from the device)."""
    names = {spec.name.split(".")[-1] for spec in report.model.inputs}
    return "input_ids" in names and "attention_mask" not in names


# ---------------------------------------------------------------- a trace, rank by rank
def trace_measure(r: RankFigures) -> SyncMeasure:
    """One rank's syncs: those inside the ProfilerSteps when the trace has steps, else
    those of the whole trace (no count per step then)."""
    s = r.syncs
    steps = r.step_count or 1
    synced = [(site.op or site.kind, round(site.count / steps)) for site in s.sites]
    synced += [(site.kind, round(site.count / steps)) for site in s.sites]
    if r.step_count:
        count, time_us, per_step = s.in_steps, s.in_steps_us, s.per_step or 0.0
    else:
        count = sum(site.count for site in s.sites)
        time_us = sum(site.total_us for site in s.sites)
        per_step = None
    return SyncMeasure(
        syncs=count,
        per_step=per_step,
        time_us=time_us,
        window_us=r.window_us,
        synced=tuple(synced),
        dtoh_copies=any("DtoH" in site.kind for site in s.sites),
    )


def trace_limits(th: dict[str, float]) -> SyncLimits:
    return SyncLimits(
        max_per_step=th["gpu.max_syncs_per_step"], warning_share=th["gpu.sync_time_share"]
    )


def trace_findings(report: Report, th: dict[str, float]) -> Iterator[Finding]:
    """Rule gpu-host-sync: one finding per rank whose step waits for the device."""
    limits = trace_limits(th)
    for r in gpu_ranks(report.trace):
        m = trace_measure(r)
        severity = sync_severity(m, limits)
        if severity is not None:
            yield _trace_finding(report.trace.ranks, r, m, severity)


def _trace_finding(
    ranks: list[RankFigures], r: RankFigures, m: SyncMeasure, severity: str
) -> Finding:
    sites = r.syncs.sites
    lines = [
        f"{site.kind} ×{site.count} ({ms(site.total_us)} ms)"
        + (f" in {site.op}" if site.op and site.op != site.kind else "")
        + (f" at {site.context}" if site.context else "")
        for site in sites[:6]
    ]
    top = sites[0] if sites else None
    advice = sync_advice(m)
    return Finding(
        rule="gpu-host-sync",
        severity=severity,
        title=(
            f"{m.syncs} host-device synchronisations"
            + (f" ({m.per_step:.1f} per step)" if m.per_step is not None else "")
            + f" take {ms(m.time_us)} ms of host time"
            + rank_suffix(ranks, r)
        ),
        evidence=evidence(
            rank=rank_key(ranks, r),
            syncs=m.syncs,
            syncs_per_step=round(m.per_step, 2) if m.per_step is not None else None,
            sync_ms=ms(m.time_us),
            share_of_window=pct(m.time_share),
            blocking_calls=r.syncs.blocking_calls,
            sites=lines,
            counted="inside ProfilerSteps" if r.step_count else "whole trace (no steps)",
            cause=advice.cause,
        ),
        recommendation=advice.recommendation,
        snippet=advice.snippet,
        target=(top.op or top.kind) if top else None,
    )
