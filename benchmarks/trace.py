"""Time and peak memory of trace analysis on each shared trace and a synthetic big one.

    python -m benchmarks.trace [--repeat 3] [--events 216000] [--traces DIR]

Each run is a fresh process (peak memory is per process: the interpreter and imports
included). Times are for analyse_paths only, not the interpreter's start or imports:
load is reading, decompressing, parsing and building the records; analyse is every figure
from them; total is the whole call (both, plus the cross-rank figures). The best of
--repeat runs (by total) is shown, as the others measure the neighbours on a busy machine;
peak memory is the largest of the runs. Each trace is measured on the default path
(msgspec's typed decoder) and on the stdlib json fallback. Target (issue 6): a 216k-event
trace analysed in < 1.5 s and < 1 GB peak.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = REPO.parent / "shared" / "traces"

TARGET_EVENTS = 200_000  # judged on a synthetic trace at least this big
TARGET_SECONDS = 1.5
TARGET_MB = 1024.0

# Runs in the child: analyse one path, print load/analyse/total seconds and peak RSS as JSON.
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from reporter.trace import analyse_paths
timings = []
wall = time.perf_counter()
section = analyse_paths([Path(sys.argv[1])], fast=sys.argv[3] == "fast", timings=timings)
wall = time.perf_counter() - wall
events = sum(r.events for r in section.ranks)
# VmHWM is this process's own peak; ru_maxrss can carry the parent's over fork+exec.
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            rss_mb = int(line.split()[1]) / 1024
except OSError:
    pass
load = sum(t[0] for t in timings)
analyse = sum(t[1] for t in timings)
print(json.dumps({"wall": wall, "load": load, "analyse": analyse, "rss_mb": rss_mb,
                  "events": events}))
"""


def synthetic_trace(target_events: int, seed: int = 0) -> dict:
    """A training-like Kineto trace: steps of nested ops launching kernels on two streams.

    Per launch: a cpu_op around an inner op, the runtime call, the kernel, and the ac2g
    flow pair; every 20th launch is a DtoD copy, every 200th an NCCL all-reduce on a
    second stream; each step ends with an item() that synchronises.
    """
    rng = random.Random(seed)
    pid, tid, dev = 4242, 4242, 0
    events: list[dict] = []
    ts = 1_700_000_000_000_000.0
    gpu_free = ts
    corr = ext = 0
    step = 0
    launches_per_step = 2000  # 6 events each: two ops, the call, the GPU op, a flow pair
    while len(events) < target_events:
        step_start = ts
        for k in range(launches_per_step):
            corr += 1
            ext += 1
            op_dur = rng.uniform(8, 40)
            rt_start = ts + 2.0
            rt_dur = rng.uniform(3, 9)
            events.append(
                {
                    "ph": "X",
                    "cat": "cpu_op",
                    "name": "aten::linear",
                    "pid": pid,
                    "tid": tid,
                    "ts": ts,
                    "dur": op_dur,
                    "args": {"External id": ext},
                }
            )
            events.append(
                {
                    "ph": "X",
                    "cat": "cpu_op",
                    "name": "aten::addmm",
                    "pid": pid,
                    "tid": tid,
                    "ts": ts + 1.0,
                    "dur": op_dur - 2.0,
                    "args": {"External id": ext + 1},
                }
            )
            ext += 1
            copy = k % 20 == 0
            comm = k % 200 == 0
            events.append(
                {
                    "ph": "X",
                    "cat": "cuda_runtime",
                    "name": "cudaMemcpyAsync" if copy else "cudaLaunchKernel",
                    "pid": pid,
                    "tid": tid,
                    "ts": rt_start,
                    "dur": rt_dur,
                    "args": {"External id": ext, "cbid": 211, "correlation": corr},
                }
            )
            k_dur = rng.uniform(2, 60)
            k_start = max(gpu_free + rng.uniform(1, 4), rt_start + 5.0)
            if copy:
                gpu_op = {
                    "ph": "X",
                    "cat": "gpu_memcpy",
                    "name": "Memcpy DtoD (Device -> Device)",
                    "pid": dev,
                    "tid": 7,
                    "ts": k_start,
                    "dur": k_dur / 4,
                    "args": {"device": dev, "stream": 7, "correlation": corr, "bytes": 1 << 20},
                }
            elif comm:
                gpu_op = {
                    "ph": "X",
                    "cat": "kernel",
                    "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*)",
                    "pid": dev,
                    "tid": 20,
                    "ts": k_start,
                    "dur": k_dur * 10,
                    "args": {"device": dev, "stream": 20, "correlation": corr},
                }
            else:
                name = rng.choice(
                    [
                        "ampere_sgemm_128x64_nn",
                        "void at::native::vectorized_elementwise_kernel<4, at::native::AUnaryFunctor"
                        "<float, float, float, at::native::binary_internal::MulFunctor<float> >, "
                        "at::detail::Array<char*, 2> >(int, at::native::AUnaryFunctor<float, float,"
                        " float, at::native::binary_internal::MulFunctor<float> >, "
                        "at::detail::Array<char*, 2>)",
                        "sm80_xmma_gemm_f32f32_tf32f32_f32_nn_n_tilesize128x128x16_stage4",
                    ]
                )
                gpu_op = {
                    "ph": "X",
                    "cat": "kernel",
                    "name": name,
                    "pid": dev,
                    "tid": 7,
                    "ts": k_start,
                    "dur": k_dur,
                    "args": {
                        "device": dev,
                        "stream": 7,
                        "correlation": corr,
                        "grid": [128, 1, 1],
                        "block": [256, 1, 1],
                    },
                }
            events.append(gpu_op)
            if not comm:
                gpu_free = gpu_op["ts"] + gpu_op["dur"]
            events.append(
                {
                    "ph": "s",
                    "id": corr,
                    "pid": pid,
                    "tid": tid,
                    "ts": rt_start,
                    "cat": "ac2g",
                    "name": "ac2g",
                }
            )
            events.append(
                {
                    "ph": "f",
                    "id": corr,
                    "pid": dev,
                    "tid": gpu_op["tid"],
                    "ts": k_start,
                    "cat": "ac2g",
                    "name": "ac2g",
                    "bp": "e",
                }
            )
            ts += op_dur + rng.uniform(1, 6)
        # item(): a sync at the end of the step.
        corr += 1
        events.append(
            {
                "ph": "X",
                "cat": "cpu_op",
                "name": "aten::item",
                "pid": pid,
                "tid": tid,
                "ts": ts,
                "dur": max(5.0, gpu_free - ts + 5.0),
                "args": {},
            }
        )
        events.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaStreamSynchronize",
                "pid": pid,
                "tid": tid,
                "ts": ts + 1.0,
                "dur": max(3.0, gpu_free - ts + 3.0),
                "args": {"correlation": corr},
            }
        )
        ts = max(ts, gpu_free) + 10.0
        events.append(
            {
                "ph": "X",
                "cat": "user_annotation",
                "name": f"ProfilerStep#{step}",
                "pid": pid,
                "tid": tid,
                "ts": step_start,
                "dur": ts - step_start,
                "args": {},
            }
        )
        step += 1
    return {
        "schemaVersion": 1,
        "deviceProperties": [
            {
                "id": 0,
                "name": "Synthetic A100",
                "totalGlobalMem": 42_000_000_000,
                "computeMajor": 8,
                "computeMinor": 0,
            }
        ],
        "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 1},
        "traceEvents": events,
    }


def measure(path: Path, repeat: int, mode: str) -> dict:
    """The best of ``repeat`` fresh-process runs (by total time), with the largest peak."""
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(REPO), mode],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{path}: analysis failed\n{proc.stderr}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["wall"])
    best["rss_mb"] = max(r["rss_mb"] for r in runs)
    return best


MODES = (("fast", "msgspec"), ("stdlib", "stdlib json"))
HEADER = (
    f"{'trace':<30} {'events':>8} {'gz MB':>6}  {'decoder':<11} {'load s':>7} "
    f"{'analyse s':>9} {'total s':>7} {'peak MB':>7}"
)


def row(name: str, events: str, size: str, decoder: str, r: dict) -> str:
    return (
        f"{name:<30} {events:>8} {size:>6}  {decoder:<11} {r['load']:>7.3f} "
        f"{r['analyse']:>9.3f} {r['wall']:>7.3f} {r['rss_mb']:>7.0f}"
    )


def verdict(r: dict) -> str:
    if r["events"] < TARGET_EVENTS:
        judged = f"not judged (fewer than {TARGET_EVENTS:,} events)"
    elif r["wall"] < TARGET_SECONDS and r["rss_mb"] < TARGET_MB:
        judged = "met"
    else:
        judged = "NOT met"
    return f"{r['wall']:.3f} s, {r['rss_mb']:.0f} MB: {judged}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=216_000)
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    args = parser.parse_args()
    paths = sorted(args.traces.glob("*.json.gz")) if args.traces.is_dir() else []
    with tempfile.TemporaryDirectory(prefix="perfreport-bench-") as tmp:
        synthetic = Path(tmp) / "synthetic.pt.trace.json.gz"
        data = synthetic_trace(args.events)
        with gzip.open(synthetic, "wt", encoding="utf-8", compresslevel=6) as fh:
            json.dump(data, fh)
        del data
        print(HEADER)
        print("-" * len(HEADER))
        on_synthetic: dict[str, dict] = {}  # by mode, for the target line
        for path in [*paths, synthetic]:
            size = f"{path.stat().st_size / 1e6:.2f}"
            name = "synthetic (generated)" if path == synthetic else path.name
            for i, (mode, decoder) in enumerate(MODES):
                r = measure(path, args.repeat, mode)
                if path == synthetic:
                    on_synthetic[mode] = r
                first = i == 0
                print(
                    row(
                        name if first else "",
                        f"{r['events']:,}" if first else "",
                        size if first else "",
                        decoder,
                        r,
                    )
                )
    print("-" * len(HEADER))
    events = on_synthetic["fast"]["events"]
    print(
        f"target (issue 6): a 216k-event trace, load + all figures, in < {TARGET_SECONDS} s "
        f"and < {TARGET_MB / 1024:.0f} GB peak; the synthetic trace has {events:,} events:"
    )
    for mode, decoder in MODES:
        print(f"  {decoder + ':':<13} {verdict(on_synthetic[mode])}")
    if not paths:
        print(f"(no shared traces at {args.traces}: only the synthetic one was measured)")


if __name__ == "__main__":
    main()
