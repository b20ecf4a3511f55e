#!/usr/bin/env python3
"""The CUDA battery behind scripts/gpu-check: perfreport's GPU paths, each checked on
figures it compares with an independent measurement or count.

Run from the repository root with a Python that has torch (CUDA build) and perfreport's
dependencies (scripts/gpu-check sets that up). One line per check, PASS / FAIL reason /
SKIP reason, then a summary line. Reports and logs go under $OUT (else ./gpu-check-out/).

    python scripts/gpu_check.py            # the battery (exit 0 all passed, 1 a check failed)
    python scripts/gpu_check.py --dry-run  # list the checks; needs neither torch nor CUDA

Exit 2, with one line, when there is no CUDA device. torch is imported only when the
battery runs, so --dry-run works anywhere.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 8 * 60  # the whole battery; checks left when it is spent are skipped
RUN_TIMEOUT_S = 180  # one perfreport run
CNN = "sample_models/mnist_cnn.py"
GPT = "sample_models/gpt_decoder.py"
LSTM = "sample_models/lstm_classifier.py"
TIMER_TOLERANCE = 0.05  # CUDA-event latency vs torch.utils.benchmark.Timer
MEMORY_TOLERANCE = 0.25  # measured inference peak vs the memory stage's estimate
SAME_FIGURE = 0.01  # two analyses of the same trace file, or two recomputations


class Fail(Exception):
    """A check failed: the message says which figures disagreed, or what was missing."""


class Skip(Exception):
    """A check could not run here: the message says why."""


def get(data: Any, path: str) -> Any:
    """report.json value at a dotted path (list items by index). A missing field fails
    the check loudly: a check that reads the wrong field must never pass."""
    value = data
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise Fail(f"report.json has no {path}")
    if value is None:
        raise Fail(f"report.json has {path} = null")
    return value


def number(data: Any, path: str) -> float:
    value = get(data, path)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise Fail(f"report.json {path} = {value!r} is not a finite number")
    return float(value)


def agree(what: str, measured: float, reference: float, tolerance: float) -> str:
    """'what a vs b (x% apart)' when within tolerance; Fail otherwise."""
    if measured == reference:
        apart = 0.0
    else:
        apart = abs(measured - reference) / abs(reference) if reference else math.inf
    text = f"{what} {measured:.6g} vs {reference:.6g} ({apart:.1%} apart)"
    if not apart <= tolerance:
        raise Fail(f"{text}, over {tolerance:.0%}")
    return text


# ------------------------------------------------------------------ running perfreport
@dataclass
class Run:
    code: int
    out: Path
    log: Path
    report: dict[str, Any] | None


class Context:
    def __init__(self, out: Path, deadline: float) -> None:
        self.out = out
        self.deadline = deadline
        self.runs: dict[str, Run] = {}

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def perfreport(self, name: str, args: list[str], ok_codes: tuple[int, ...] = (0, 1)) -> Run:
        """`python -m reporter ARGS -o OUT/name`, once per name; its report.json loaded."""
        if name in self.runs:
            return self.runs[name]
        out, log = self.out / name, self.out / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        timeout = min(RUN_TIMEOUT_S, self.left_s())
        if timeout < 10:
            raise Skip("the battery's time budget is spent")
        command = [sys.executable, "-m", "reporter", *args, "-o", str(out)]
        with log.open("w") as f:
            f.write("$ " + " ".join(command) + "\n")
            f.flush()
            try:
                code = subprocess.run(
                    command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=timeout
                ).returncode
            except subprocess.TimeoutExpired:
                raise Fail(f"perfreport {name} ran past {timeout:.0f} s; log {log}") from None
        path = out / "report.json"
        report = json.loads(path.read_text()) if path.is_file() else None
        run = Run(code, out, log, report)
        self.runs[name] = run
        if code not in ok_codes:
            raise Fail(f"perfreport exited {code} (expected {ok_codes}); log {log}")
        if report is None:
            raise Fail(f"perfreport wrote no report.json; log {log}")
        return run

    def model_report(self, key: str) -> dict[str, Any]:
        """The full default report of the CNN or the GPT decoder on cuda."""
        model = {"cnn": CNN, "gpt": GPT}[key]
        run = self.perfreport(key, [model, "--device", "cuda"])
        assert run.report is not None
        return run.report


def load(model_file: str) -> Any:
    """The model and inputs exactly as perfreport builds them (same loader, seed 0)."""
    from reporter.loader import load_subject
    from reporter.options import RunOptions

    return load_subject(
        RunOptions(model_file=str(ROOT / model_file), out_dir=str(out_dir()), device="cuda")
    )


# ------------------------------------------------------------------ the checks
def check_reports(ctx: Context, key: str) -> str:
    report = ctx.model_report(key)
    stages = get(report, "stages")
    # opt-in stages, and health without --train, are skipped by design; nothing may fail
    may_skip = {"deploy", "experiments", "health"}
    wrong = {
        n: s.get("error") or s.get("reason")
        for n, s in stages.items()
        if s["status"] == "failed" or (s["status"] == "skipped" and n not in may_skip)
    }
    if wrong:
        raise Fail(f"stages failed or skipped: {wrong}")
    for needed in ("profile", "timing", "trace", "memory"):
        if get(report, f"stages.{needed}.status") != "ok":
            raise Fail(f"stage {needed} did not run")
    if not str(get(report, "profile.device")).startswith("cuda"):
        raise Fail(f"profile.device is {get(report, 'profile.device')!r}, not cuda")
    kernels = get(report, "profile.kernels")
    kernel_us = sum(float(k["total_us"]) for k in kernels)
    if not kernels or kernel_us <= 0:
        raise Fail("no CUDA kernels in profile.kernels")
    step_us = number(report, "profile.step_us_median")
    return f"{len(kernels)} CUDA kernels, {kernel_us:.0f} µs of kernels per {step_us:.0f} µs step"


def _trace_file(run_dir: Path, report: dict[str, Any]) -> Path:
    files = get(report, "profile.trace_files")
    if not files:
        raise Fail("profile.trace_files is empty")
    return run_dir / files[0]


def kernel_union_us(trace: Path) -> tuple[float, float]:
    """Union of kernel intervals from the first ProfilerStep on, and that window's span:
    read from the trace file here, independently of reporter/trace/."""
    opener = gzip.open if trace.suffix == ".gz" else open
    with opener(trace, "rt") as f:
        events = json.load(f).get("traceEvents", [])
    steps = [e for e in events if str(e.get("name", "")).startswith("ProfilerStep#")]
    all_kernels = [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]
    if not all_kernels:
        raise Fail(f"no kernel events in {trace}")
    first = steps or all_kernels  # without ProfilerSteps: from the first kernel
    start = min(float(e["ts"]) for e in first)
    kernels = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)))
        for e in all_kernels
        if float(e["ts"]) >= start
    )
    busy, end = 0.0, -math.inf
    for a, b in kernels:
        if b <= end:
            continue
        busy += b - max(a, end)
        end = b
    return busy, end - start


def check_gpu_busy(ctx: Context, key: str) -> str:
    report = ctx.model_report(key)
    run = ctx.runs[key]
    utilisation = number(report, "trace.overall.utilisation")
    busy = number(report, "trace.overall.gpu_busy_us")
    if not 0 < utilisation <= 1:
        raise Fail(f"trace.overall.utilisation = {utilisation} outside (0, 1]")
    mine, _ = kernel_union_us(_trace_file(run.out, report))
    # the report clips to its window (until the last step's GPU work ends): at most a few
    # kernels after the last step can differ
    text = agree("GPU busy µs, report vs kernel union from the trace", busy, mine, 0.02)
    return f"busy {utilisation:.1%} of the window; {text}"


def check_cuda_events(ctx: Context, key: str) -> str:
    import torch
    from torch.utils.benchmark import Timer

    report = ctx.model_report(key)
    events_ms = number(report, "timing.cuda_event_ms.median")
    subject = load({"cnn": CNN, "gpt": GPT}[key])
    subject.model.eval()

    def call() -> None:
        with torch.inference_mode():
            subject.call()

    for _ in range(10):
        call()
    timer = Timer(stmt="call()", globals={"call": call})  # synchronises CUDA around runs
    timer_ms = timer.blocked_autorange(min_run_time=2.0).median * 1e3
    return agree("CUDA-event median ms vs Timer median", events_ms, timer_ms, TIMER_TOLERANCE)


def check_memory(ctx: Context, key: str) -> str:
    import torch

    report = ctx.model_report(key)
    estimate = number(report, "memory.inference_total_bytes")
    weights = number(report, "memory.parameter_bytes") + number(report, "memory.buffer_bytes")
    inputs = number(report, "memory.input_bytes")
    subject = load({"cnn": CNN, "gpt": GPT}[key])
    device = subject.device
    with torch.inference_mode():
        subject.call()  # cuBLAS/cuDNN workspaces are allocated once, here, and kept
        torch.cuda.synchronize(device)
        steady = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        subject.call()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    measured = weights + inputs + (peak - steady)
    return agree(
        "inference bytes: weights + inputs + measured peak (max_memory_allocated) vs the "
        "memory stage's estimate",
        measured,
        estimate,
        MEMORY_TOLERANCE,
    )


def check_train(ctx: Context) -> str:
    from torch.utils.flop_counter import FlopCounterMode

    run = ctx.perfreport("cnn-train", [CNN, "--device", "cuda", "--train"])
    report = run.report
    if get(report, "profile.mode") != "train":
        raise Fail(f"profile.mode is {get(report, 'profile.mode')!r}, not train")
    if not get(report, "profile.kernels"):
        raise Fail("no CUDA kernels in the training profile")
    backward = number(report, "flops.backward_total")
    # the same training step counted here on the CPU: forward + backward, less forward
    from reporter.loader import load_subject
    from reporter.options import RunOptions

    subject = load_subject(RunOptions(model_file=str(ROOT / CNN), out_dir=str(out_dir())))
    model = subject.model.train()
    with FlopCounterMode(display=False) as forward_only:
        model(*subject.args, **subject.kwargs)
    with FlopCounterMode(display=False) as both:
        out = model(*subject.args, **subject.kwargs)
        subject.loss_fn(out, subject.inputs).backward()
    counted = both.get_total_flops() - forward_only.get_total_flops()
    return "train profile on cuda; " + agree(
        "backward FLOPs, report vs FlopCounterMode on CPU", backward, counted, SAME_FIGURE
    )


def check_experiments(ctx: Context) -> str:
    run = ctx.perfreport(
        "cnn-experiments",
        [CNN, "--device", "cuda", "--experiments", "--only", "summary,experiments"],
    )
    found = {e["name"]: e for e in get(run.report, "experiments.experiments")}
    wanted = ("cudnn_benchmark", "tf32", "bf16_autocast", "fp16_autocast", "bf16_cast")
    parts = []
    for name in wanted:
        e = found.get(name)
        if e is None:
            if name == "fp16_autocast":
                parts.append("fp16 autocast: perfreport has no such experiment")
                continue
            raise Fail(f"experiments.experiments has no {name} (has {sorted(found)})")
        if e["status"] != "measured":
            raise Fail(f"{name} {e['status']}: {e.get('reason')}")
        speedup = float(e["speedup"])
        per = e.get("samples_per_call") or [1, 1]
        before = statistics.median(x / per[0] for x in e["baseline_samples_ms"])
        after = statistics.median(x / per[1] for x in e["variant_samples_ms"])
        agree(f"{name} speedup vs its samples", speedup, before / after, 1e-6)
        parts.append(f"{name} {speedup:.2f}x ({before:.3f} → {after:.3f} ms)")
    # Deployment variants: each measured, or skipped with its reason (never failed).
    for name in ("int8_dynamic", "int8_weight_only", "int4_weight_only", "onnxruntime"):
        e = found.get(name)
        if e is None or e["status"] == "failed":
            raise Fail(f"{name}: {e and e.get('reason')}")
        parts.append(f"{name} {e['status']}")
    return "; ".join(parts)


def check_oom(ctx: Context) -> str:
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    per_sample = 4 * (32 * 26 * 26 + 64 * 24 * 24)  # the CNN's two conv outputs, float32
    batch = math.ceil(3 * total / per_sample)  # three times the device in activations alone
    run = ctx.perfreport(
        "cnn-oom",
        [CNN, "--device", "cuda", "--input-shape", f"{batch},1,28,28", "--only", "summary,timing"],
        ok_codes=(0, 1, 3),
    )
    report = run.report
    findings = [f for f in get(report, "findings") if f.get("rule") == "cuda-out-of-memory"]
    if not findings:
        raise Fail(f"batch {batch}: no cuda-out-of-memory finding (exit {run.code})")
    oom_stages = [
        n for n, s in get(report, "stages").items() if (s.get("facts") or {}).get("out_of_memory")
    ]
    if not oom_stages:
        raise Fail("a cuda-out-of-memory finding, but no stage has facts.out_of_memory")
    facts = get(report, f"stages.{oom_stages[0]}.facts")
    device_total = float(facts.get("device_total_bytes") or 0)
    text = agree("device total bytes in the finding vs torch", device_total, total, 0)
    return f"batch {batch}: {oom_stages[0]} stage ran out of memory, report written; {text}"


def check_lstm_flops(ctx: Context) -> str:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    run = ctx.perfreport("lstm", [LSTM, "--device", "cuda", "--only", "summary,flops"])
    on_cuda = number(run.report, "flops.forward_total")
    from reporter.loader import load_subject
    from reporter.options import RunOptions

    subject = load_subject(RunOptions(model_file=str(ROOT / LSTM), out_dir=str(out_dir())))
    # the ordinary path: no oneDNN, so aten::lstm runs as its matrix products
    with (
        torch.backends.mkldnn.flags(enabled=False),
        torch.no_grad(),
        FlopCounterMode(display=False) as counter,
    ):
        subject.model(*subject.args, **subject.kwargs)
    return agree(
        "forward FLOPs, cuDNN LSTM formula vs the ordinary path on CPU",
        on_cuda,
        float(counter.get_total_flops()),
        SAME_FIGURE,
    )


def check_torchrun(ctx: Context) -> str:
    import torch

    gpus = torch.cuda.device_count()
    run = ctx.perfreport("cnn-torchrun", [CNN, "--device", "cuda", "--nproc-per-node", str(gpus)])
    report = run.report
    if get(report, "distributed.backend") != "nccl":
        raise Fail(f"distributed.backend is {get(report, 'distributed.backend')!r}, not nccl")
    world = number(report, "distributed.world_size")
    agree("world size vs GPUs", world, gpus, 0)
    ranks = get(report, "distributed.ranks")
    states = [r["state"] for r in ranks]
    if len(ranks) != gpus or any(s != "done" for s in states):
        raise Fail(f"rank states {states}")
    steps = [len(r.get("step_seconds") or []) for r in ranks]
    if not all(steps):
        raise Fail(f"a rank recorded no step times: {steps}")
    text = f"{gpus} rank(s) on nccl, all done, {steps[0]} timed steps each"
    grads = report["distributed"].get("grads")
    if gpus > 1 and grads:
        if not grads.get("allreduced"):
            raise Fail("gradients were not all-reduced across ranks")
        text += f"; gradients all-reduced (max relative difference {grads.get('max_rel_diff')})"
    return text


def check_trace_cli(ctx: Context) -> str:
    report = ctx.model_report("cnn")
    trace_dir = ctx.runs["cnn"].out / "trace"
    run = ctx.perfreport("cnn-trace", ["trace", str(trace_dir), "--format", "json"])
    parts = []
    for path in (
        "trace.overall.gpu_busy_us",
        "trace.overall.kernel_count",
        "trace.overall.utilisation",
    ):
        parts.append(
            agree(path.split(".")[-1], number(run.report, path), number(report, path), SAME_FIGURE)
        )
    return "perfreport trace vs the report: " + "; ".join(parts)


def check_environment(ctx: Context) -> str:
    import torch

    report = ctx.model_report("cnn")
    name = torch.cuda.get_device_name(0)
    named = [get(report, "environment.device_name"), *get(report, "environment.cuda.devices")]
    if name not in named:
        raise Fail(f"GPU {name!r} not in environment.device_name/cuda.devices {named}")
    cuda_version = get(report, "environment.cuda.cuda_version")
    if cuda_version != torch.version.cuda:
        raise Fail(f"environment.cuda.cuda_version {cuda_version!r} != torch {torch.version.cuda}")
    cuda = get(report, "environment.cuda")
    driver_keys = [k for k in cuda if "driver" in k.lower()]
    if not driver_keys:
        raise Fail(f"environment.cuda names no driver version (keys: {', '.join(sorted(cuda))})")
    driver = str(cuda[driver_keys[0]])
    smi = shutil.which("nvidia-smi")
    if smi:
        query = [smi, "--query-gpu=driver_version", "--format=csv,noheader"]
        actual = subprocess.run(query, capture_output=True, text=True).stdout.split()
        if actual and driver != actual[0]:
            raise Fail(f"environment.cuda.{driver_keys[0]} {driver!r} != nvidia-smi {actual[0]!r}")
    return f"{name}, driver {driver}, CUDA {cuda_version}"


def check_roofline(ctx: Context) -> str:
    report = ctx.model_report("cnn")
    if get(report, "stages.roofline.status") != "ok":
        raise Fail(f"roofline stage: {get(report, 'stages.roofline')}")
    peak = number(report, "roofline.machine.peak_flops")
    spec = get(report, "roofline.machine.spec_flops")
    ops = get(report, "roofline.ops")
    if not ops:
        raise Fail("roofline.ops is empty")
    over = [o["name"] for o in ops if float(o["achieved_flops"]) > peak * (1 + 1e-9)]
    if over:
        raise Fail(f"ops above the compute ceiling {peak:.3g} FLOP/s: {over[:3]}")
    latency = number(report, "timing.latency_ms.median")
    sol = number(report, "roofline.model.speed_of_light_ms")
    if sol > latency:
        raise Fail(f"speed of light {sol:.4f} ms above the measured latency {latency:.4f} ms")
    flops = number(report, "roofline.model.flops")
    achieved = number(report, "roofline.model.achieved_flops")
    parts = [agree("achieved FLOP/s vs FLOPs / latency", achieved, flops / latency * 1e3, 1e-6)]
    spec_note = (
        ", ".join(f"{d} {float(p['value']):.3g}" for d, p in spec.items()) or "none (unknown GPU)"
    )
    return "; ".join(parts) + f"; measured peak {peak:.3g} FLOP/s, published: {spec_note}"


def check_memory_timeline(ctx: Context) -> str:
    run = ctx.perfreport("cnn-train", [CNN, "--device", "cuda", "--train"])
    timeline = get(run.report, "memory.timeline")
    if not timeline:
        raise Fail("memory.timeline is missing with --train")
    checks = {c["what"]: c for c in timeline["checks"]}
    wrong = [
        f"{c['what']}: timeline {c['timeline_bytes']} vs {c['expected_bytes']}"
        for c in checks.values()
        if not c["agrees"] and not c["what"].startswith("activations")
    ]
    if wrong:
        raise Fail("; ".join(wrong))
    peak = int(timeline["peak_bytes"])
    if peak != sum(timeline["at_peak_by_category"].values()):
        raise Fail("the peak is not the sum of its categories")
    return f"peak {peak:,} B in {timeline['peak_phase']}; parameters, gradients, AdamW state exact"


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    run: Callable[[Context], str]


CHECKS: tuple[Check, ...] = (
    Check("cnn-report", "MNIST CNN on cuda: every default stage ok, CUDA kernels in the profile",
          lambda c: check_reports(c, "cnn")),
    Check("gpt-report", "GPT decoder on cuda: every default stage ok, CUDA kernels in the profile",
          lambda c: check_reports(c, "gpt")),
    Check("cnn-gpu-busy", "CNN GPU busy time: the trace stage vs a kernel union read here",
          lambda c: check_gpu_busy(c, "cnn")),
    Check("gpt-gpu-busy", "GPT GPU busy time: the trace stage vs a kernel union read here",
          lambda c: check_gpu_busy(c, "gpt")),
    Check("cnn-cuda-events", "CNN latency: CUDA events vs torch.utils.benchmark.Timer (5%)",
          lambda c: check_cuda_events(c, "cnn")),
    Check("gpt-cuda-events", "GPT latency: CUDA events vs torch.utils.benchmark.Timer (5%)",
          lambda c: check_cuda_events(c, "gpt")),
    Check("cnn-memory", "CNN max_memory_allocated peak vs the memory stage's estimate (25%)",
          lambda c: check_memory(c, "cnn")),
    Check("gpt-memory", "GPT max_memory_allocated peak vs the memory stage's estimate (25%)",
          lambda c: check_memory(c, "gpt")),
    Check("train", "--train on cuda: train profile, backward FLOPs vs FlopCounterMode",
          check_train),
    Check("experiments", "--experiments: cudnn.benchmark, TF32, bf16 autocast measured",
          check_experiments),
    Check("oom", "a batch far too large: cuda-out-of-memory finding and a report",
          check_oom),
    Check("lstm-flops", "cuDNN LSTM FLOP formula vs the ordinary path's count",
          check_lstm_flops),
    Check("torchrun-nccl", "torchrun with nccl on every GPU present",
          check_torchrun),
    Check("trace-cli", "perfreport trace on the CNN's own trace agrees with its report",
          check_trace_cli),
    Check("environment", "environment names the GPU, the driver and the CUDA version",
          check_environment),
    Check("roofline", "speed of light on cuda: ops under the ceiling, speed of light <= latency",
          check_roofline),
    Check("memory-timeline", "--train memory timeline on cuda: parameters, gradients, AdamW exact",
          check_memory_timeline),
)  # fmt: skip


# ------------------------------------------------------------------ main
def cuda_missing() -> str:
    """Why this Python cannot use CUDA; '' when it can."""
    try:
        import torch
    except ImportError as exc:
        return f"torch does not import ({exc})"
    if not torch.cuda.is_available():
        build = torch.version.cuda or "a CPU-only build"
        return f"torch {torch.__version__} ({build}) sees no CUDA device"
    return ""


def out_dir() -> Path:
    return Path(os.environ.get("OUT") or ROOT / "gpu-check-out").resolve()


def run_battery(out: Path, only: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out, time.monotonic() + BUDGET_S)
    results: dict[str, list[str]] = {"PASS": [], "FAIL": [], "SKIP": []}
    lines = []
    for check in CHECKS:
        if only and check.name not in only:
            continue
        started = time.monotonic()
        try:
            if ctx.left_s() < 10:
                raise Skip("the battery's time budget is spent")
            status, text = "PASS", check.run(ctx)
        except Skip as exc:
            status, text = "SKIP", str(exc)
        except Fail as exc:
            status, text = "FAIL", str(exc)
        except Exception as exc:  # a bug or an API change: still one line, and go on
            status, text = "FAIL", f"{type(exc).__name__}: {exc}"
        line = f"{status} {check.name}: {text} [{time.monotonic() - started:.0f} s]"
        print(line, flush=True)
        lines.append(line)
        results[status].append(check.name)
    summary = (
        f"gpu-check: {len(results['PASS'])} passed, {len(results['FAIL'])} failed, "
        f"{len(results['SKIP'])} skipped in {BUDGET_S - ctx.left_s():.0f} s; reports and "
        f"logs in {out}"
    )
    print(summary, flush=True)
    (out / "gpu-check.txt").write_text("\n".join([*lines, summary]) + "\n")
    return 1 if results["FAIL"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="list the checks and exit")
    parser.add_argument("--only", default="", help="comma-separated check names")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - {c.name for c in CHECKS})
    if unknown:
        print(f"gpu-check: unknown check(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.dry_run:
        for check in CHECKS:
            if not only or check.name in only:
                print(f"{check.name}: {check.what}")
        return 0
    missing = cuda_missing()
    if missing:
        print(f"gpu-check: no CUDA here: {missing}; --dry-run lists the checks", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    return run_battery(out_dir(), only)


if __name__ == "__main__":
    sys.exit(main())
