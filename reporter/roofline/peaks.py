"""The machine's ceilings: matrix-multiply FLOP/s, memory bandwidth, the cost of one op call.

Measured once per machine (device name, thread count, torch version) and cached in
``~/.cache/perfreport/peaks.json`` (``PERFREPORT_CACHE_DIR`` moves it), because the
measurement takes about a second and a machine's ceilings do not change between runs.
``PERFREPORT_REFRESH_PEAKS=1`` measures again. On CUDA the vendor's published dense peak
for known GPUs is kept beside the measured one.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reporter.report.base import from_data, to_data
from reporter.report.roofline import MachinePeaks, Peak
from reporter.roofline.specs import published_peaks

REFRESH_ENV = "PERFREPORT_REFRESH_PEAKS"
CACHE_ENV = "PERFREPORT_CACHE_DIR"
MATMUL_SIZES = (1024, 2048)
COPY_BYTES = 128 * 2**20  # the least copied; twice the last-level cache when that is more
MEASURE_SECONDS = 0.15  # per size and dtype


def cache_path() -> Path:
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "perfreport"
    return Path(base) / "peaks.json"


def machine_key(device: torch.device) -> str:
    return f"{device_name(device)}|threads={torch.get_num_threads()}|torch={torch.__version__}"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine() or "cpu"


def machine_peaks(device: torch.device, dtypes: list[torch.dtype]) -> MachinePeaks:
    """The ceilings for the model's dtypes, from the cache when it has them all."""
    path = cache_path()
    key = machine_key(device)
    cache = _read_cache(path)
    wanted = [_dtype_name(d) for d in dtypes] or ["float32"]
    entry = cache.get(key)
    peaks = from_data(MachinePeaks, entry) if isinstance(entry, dict) else None
    stale = os.environ.get(REFRESH_ENV) == "1"
    if peaks is None or stale or not all(d in peaks.measured_flops for d in wanted):
        peaks = measure(device, [getattr(torch, d) for d in wanted], known=None if stale else peaks)
        cache[key] = to_data(peaks)
        _write_cache(path, cache)
    peaks.cache_file = str(path)
    return select_dtype(peaks, wanted[0])


def select_dtype(peaks: MachinePeaks, dtype: str) -> MachinePeaks:
    """Use the measured (else published) ceiling of this dtype as the compute ceiling."""
    chosen = peaks.measured_flops.get(dtype) or peaks.spec_flops.get(dtype)
    if chosen is not None:
        peaks.peak_flops = chosen.value
        peaks.dtype = dtype
    return peaks


def measure(
    device: torch.device, dtypes: list[torch.dtype], known: MachinePeaks | None = None
) -> MachinePeaks:
    name = device_name(device)
    measured = dict(known.measured_flops) if known else {}
    for dtype in dtypes:
        if _dtype_name(dtype) not in measured:
            measured[_dtype_name(dtype)] = Peak(
                matmul_flops(device, dtype),
                f"best of torch.mm at {', '.join(f'{n}²' for n in MATMUL_SIZES)}, "
                f"{torch.get_num_threads()} threads",
                _dtype_name(dtype),
            )
    bandwidth = known.measured_bytes_per_s if known else None
    if bandwidth is None:
        bandwidth = Peak(
            copy_bandwidth(device),
            f"best of copying {copy_bytes(device) // 2**20} MiB, more than the caches hold "
            "(bytes read + written per second)",
        )
    floor = known.call_floor_us if known else call_floor_us(device)
    spec = published_peaks(name) if device.type == "cuda" else None
    spec_flops, spec_bw = spec if spec else ({}, None)
    first = _dtype_name(dtypes[0]) if dtypes else "float32"
    return MachinePeaks(
        device_name=name,
        peak_flops=measured[first].value,
        peak_bytes_per_s=bandwidth.value,
        call_floor_us=floor,
        dtype=first,
        measured_flops=measured,
        spec_flops=spec_flops,
        measured_bytes_per_s=bandwidth,
        spec_bytes_per_s=spec_bw,
        measured_on=datetime.date.today().isoformat(),
        refresh=f"{REFRESH_ENV}=1 perfreport ... (or delete the cache file)",
        method="ceilings measured on this machine: the attainable peaks, which the roofline "
        "uses; published peaks are shown beside them where known",
    )


def _best_seconds(fn: Callable[[], Any], sync: Callable[[], None], budget: float) -> float:
    fn()
    sync()  # warm-up: first-call allocation and kernel selection
    best = float("inf")
    deadline = time.perf_counter() + budget
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
        runs += 1
        if runs >= 50:
            break
    return best


def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def matmul_flops(device: torch.device, dtype: torch.dtype) -> float:
    """The best FLOP/s of square matrix products at sizes large enough to be compute-bound."""
    best = 0.0
    for n in MATMUL_SIZES:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        seconds = _best_seconds(
            lambda a=a, b=b, out=out: torch.mm(a, b, out=out), _sync(device), MEASURE_SECONDS
        )
        best = max(best, 2 * n**3 / seconds)
    return best


def copy_bytes(device: torch.device) -> int:
    """A copy far larger than the last-level cache (servers have 300 MB of L3), so it
    streams from main memory; at most an eighth of the memory available."""
    cache = 0
    if device.type == "cuda":
        cache = int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))
    else:
        for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
            cache = max(
                cache, _size((index / "size").read_text()) if (index / "size").is_file() else 0
            )
    wanted = max(COPY_BYTES, 2 * cache)
    from reporter.loader import available_memory  # the cgroup's limit counts too

    available = available_memory(device)
    return min(wanted, available // 8) if available else wanted


def _size(text: str) -> int:
    """sysfs sizes: '307200K', '2048K', '48K'."""
    text = text.strip().upper()
    for suffix, factor in (("K", 2**10), ("M", 2**20), ("G", 2**30)):
        if text.endswith(suffix):
            return int(text[:-1]) * factor
    return int(text) if text.isdigit() else 0


def copy_bandwidth(device: torch.device) -> float:
    """Bytes read plus bytes written per second by one copy larger than the caches."""
    total = copy_bytes(device)
    n = total // 4
    src = torch.ones(n, device=device)
    dst = torch.empty(n, device=device)
    seconds = _best_seconds(lambda: dst.copy_(src), _sync(device), MEASURE_SECONDS)
    return 2 * n * 4 / seconds


def call_floor_us(device: torch.device) -> float:
    """Median time of one call of a one-element add, timed as the roofline pass times ops."""
    from reporter.roofline.timer import time_call

    a = torch.ones(1, device=device)
    b = torch.ones(1, device=device)
    add = torch.ops.aten.add.Tensor
    for _ in range(20):
        add(a, b)
    samples = [time_call(device, add, (a, b), {})[1] for _ in range(200)]
    return statistics.median(samples)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    """Best effort: a read-only home only costs the next run a new measurement."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
