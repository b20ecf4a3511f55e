"""Published dense peaks of known GPUs: FLOP/s by dtype and memory bytes/s.

No torch here: ``perfreport trace`` places a trace's kernels against these ceilings
without importing torch, and the live roofline (``peaks.py``) shows them beside the
measured ones.
"""

from __future__ import annotations

from reporter.report.roofline import Peak

# Published dense peaks (no sparsity), FLOP/s by dtype and bytes/s, from the vendors'
# data sheets. Matched by substring of the device name (torch.cuda.get_device_name() or a
# trace's deviceProperties), most specific first. Variants of one chip share its FLOP/s
# and differ in memory bandwidth.
_T = 1e12
_HOPPER = {"float32": 67 * _T, "tf32": 494.7 * _T, "bfloat16": 989.4 * _T, "float16": 989.4 * _T}
_A100 = {"float32": 19.5 * _T, "tf32": 156 * _T, "bfloat16": 312 * _T, "float16": 312 * _T}
GPU_SPECS: list[tuple[str, dict[str, float], float]] = [
    ("H200", _HOPPER, 4.8e12),
    (
        "H100 PCIe",
        {"float32": 51 * _T, "tf32": 378 * _T, "bfloat16": 756 * _T, "float16": 756 * _T},
        2.0e12,
    ),
    ("H100", _HOPPER, 3.35e12),
    ("A100-SXM4-80GB", _A100, 2.039e12),
    ("A100-PCIE-80GB", _A100, 1.935e12),
    ("A100", _A100, 1.555e12),
    ("V100", {"float32": 15.7 * _T, "float16": 125 * _T}, 0.9e12),
    (
        "L40S",
        {"float32": 91.6 * _T, "tf32": 183 * _T, "bfloat16": 362 * _T, "float16": 362 * _T},
        0.864e12,
    ),
    (
        "L4",
        {"float32": 30.3 * _T, "tf32": 60 * _T, "bfloat16": 121 * _T, "float16": 121 * _T},
        0.3e12,
    ),
    (
        "A10",
        {"float32": 31.2 * _T, "tf32": 62.5 * _T, "bfloat16": 125 * _T, "float16": 125 * _T},
        0.6e12,
    ),
    ("T4", {"float32": 8.1 * _T, "float16": 65 * _T}, 0.32e12),
    ("RTX 4090", {"float32": 82.6 * _T, "bfloat16": 165.2 * _T, "float16": 165.2 * _T}, 1.008e12),
]


def spec_for(device_name: str) -> tuple[dict[str, float], float] | None:
    """The published dense peaks of a known GPU, or None."""
    for key, flops, bandwidth in GPU_SPECS:
        if key.lower() in device_name.lower():
            return flops, bandwidth
    return None


def published_peaks(device_name: str) -> tuple[dict[str, Peak], Peak] | None:
    """``spec_for`` as the Peaks a report shows: FLOP/s by dtype and bytes/s, or None."""
    spec = spec_for(device_name)
    if spec is None:
        return None
    flops, bandwidth = spec
    by_dtype = {d: Peak(v, "vendor data sheet, dense", d) for d, v in flops.items()}
    return by_dtype, Peak(bandwidth, "vendor data sheet")
