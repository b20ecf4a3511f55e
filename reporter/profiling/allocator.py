"""The allocator experiment: the same timing in fresh processes under other mallocs.

glibc's malloc gives large freed blocks back to the kernel (blocks above the mmap
threshold are unmapped, and the top of the heap is trimmed above the trim threshold), so
each forward can fault its activations back in, page by page. Both thresholds move up
when a large block is freed, which is why the latency used to depend on the stages run
before timing. Fixing the thresholds high, or preloading jemalloc or tcmalloc, keeps the
pages. Which helps, and by how much, is measured: each variant is a fresh model process
running only the timing stage, beside a fresh baseline process. Torch-free: the parent
process runs this.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from reporter.report.profile import TimingSection
from reporter.report.timing_counters import AllocatorExperiment, AllocatorVariant

MIB = 1024 * 1024
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2): a higher value
# is ignored and the threshold stays dynamic. Blocks above it are still mapped per call.
GLIBC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * MIB),
    # Keep up to 256 MiB of freed memory at the top of the heap instead of trimming it.
    "MALLOC_TRIM_THRESHOLD_": str(256 * MIB),
    # Grow the heap 64 MiB beyond each request, so growing it is rarer (address space
    # only: pages are not touched until used).
    "MALLOC_TOP_PAD_": str(64 * MIB),
}
PRELOAD_LIBS = {
    "jemalloc": ("libjemalloc.so.2", "libjemalloc.so"),
    "tcmalloc": (
        "libtcmalloc_minimal.so.4",
        "libtcmalloc.so.4",
        "libtcmalloc_minimal.so",
        "libtcmalloc.so",
    ),
}
# Variables that change which malloc runs or how; the baseline records those already set.
MALLOC_VARIABLES = (*GLIBC_ENV, "LD_PRELOAD", "GLIBC_TUNABLES", "MALLOC_ARENA_MAX")
BASELINE = "glibc (as configured)"
GLIBC_HIGH = "glibc, thresholds fixed high"


def library_dirs() -> list[Path]:
    """Where shared libraries are usually installed, this Python's prefix included."""
    dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        f"{sys.prefix}/lib",
    ]
    if os.environ.get("CONDA_PREFIX"):
        dirs.append(f"{os.environ['CONDA_PREFIX']}/lib")
    return [Path(d) for d in dict.fromkeys(dirs)]


def find_preload_libs(dirs: Iterable[Path]) -> dict[str, str]:
    """The first jemalloc and tcmalloc library found in ``dirs``, by allocator name."""
    found: dict[str, str] = {}
    dirs = list(dirs)
    for name, files in PRELOAD_LIBS.items():
        for d in dirs:
            hit = next((d / f for f in files if (d / f).is_file()), None)
            if hit is not None:
                found[name] = str(hit)
                break
    return found


def preload_env(library: str, environ: Mapping[str, str]) -> dict[str, str]:
    """LD_PRELOAD with ``library`` first, keeping what was preloaded already."""
    current = environ.get("LD_PRELOAD", "").strip()
    return {"LD_PRELOAD": f"{library} {current}".strip() if current else library}


def experiment_variants(
    libraries: Mapping[str, str], environ: Mapping[str, str]
) -> list[AllocatorVariant]:
    """The variants to time against the baseline, each with the variables it adds."""
    variants = [AllocatorVariant(name=GLIBC_HIGH, env=dict(GLIBC_ENV))]
    for name, path in libraries.items():
        variants.append(AllocatorVariant(name=name, env=preload_env(path, environ)))
    return variants


def malloc_in_use(maps_text: str, environ: Mapping[str, str]) -> str:
    """Which malloc a process uses, from its /proc/self/maps, and its glibc settings."""
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if f"lib{name}" in maps_text:
            return name
    settings = [f"{k}={environ[k]}" for k in (*GLIBC_ENV, "GLIBC_TUNABLES") if environ.get(k)]
    return "glibc malloc" + (f" ({', '.join(settings)})" if settings else "")


def current_malloc() -> str:
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        maps = ""
    return malloc_in_use(maps, os.environ)


def env_lines(env: Mapping[str, str]) -> str:
    """Shell lines that set ``env``."""
    return "\n".join(f"export {k}={v}" for k, v in env.items())


TimeFn = Callable[[dict[str, str]], TimingSection]  # extra env -> the fresh process's timing


def fill(variant: AllocatorVariant, timing: TimingSection) -> None:
    """Copy a fresh process's timing figures into its variant."""
    lat = timing.latency_ms
    variant.median_ms = lat.median
    variant.median_low, variant.median_high = lat.median_low, lat.median_high
    if timing.counters is not None:
        variant.minor_faults_per_call = timing.counters.minor_faults_per_call
    variant.allocator = timing.allocator
    variant.noise_reason = timing.noise_reason


def run_experiment(reason: str, time_fn: TimeFn, environ: Mapping[str, str]) -> AllocatorExperiment:
    """Time a fresh baseline process, then each variant; speedups against the baseline.

    A variant whose process fails (a preloaded library that does not load, a crash) is
    kept with its error; the baseline's failure stops the experiment.
    """
    baseline = AllocatorVariant(
        name=BASELINE, env={k: environ[k] for k in MALLOC_VARIABLES if environ.get(k)}
    )
    experiment = AllocatorExperiment(baseline=baseline, reason=reason)
    experiment.method = (
        "Each line is a fresh model process that loads the model and runs only the timing "
        "stage, one after the other: first with the environment unchanged, then with the "
        "variables shown added. Speedup = baseline median / variant median."
    )
    try:
        fill(baseline, time_fn({}))
    except Exception as exc:  # noqa: BLE001 (any failure ends the experiment, with the reason)
        baseline.status, baseline.error = "failed", str(exc)
        return experiment
    for variant in experiment_variants(find_preload_libs(library_dirs()), environ):
        try:
            fill(variant, time_fn(variant.env))
        except Exception as exc:  # noqa: BLE001
            variant.status, variant.error = "failed", str(exc)
        if variant.median_ms and baseline.median_ms:
            variant.speedup = baseline.median_ms / variant.median_ms
        experiment.variants.append(variant)
    return experiment
