"""The environment record: versions, device, threads, command line, seed, time."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from typing import Any

import torch

from reporter import __version__
from reporter.options import RunOptions
from reporter.report import Environment


def record_environment(options: RunOptions, device: torch.device) -> Environment:
    return Environment(
        perfreport_version=__version__,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        platform=platform.platform(),
        device_name=device_name(device),
        cpu_count=os.cpu_count() or 0,
        torch_threads=torch.get_num_threads(),
        num_threads=options.threads,
        cuda=cuda_state(),
        device_memory_bytes=device_memory(device),
        command_line=options.command_line or " ".join(sys.argv),
        seed=options.seed,
        timestamp=now_iso(),
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "meta":
        return "meta (no memory allocated, nothing executed)"
    return cpu_model() or platform.processor() or platform.machine()


def device_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def cpu_model() -> str:
    """The CPU's marketing name on Linux (platform.processor() is often empty there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cuda_state() -> dict[str, Any]:
    """Settings that change GPU speed, recorded so two reports can be compared fairly."""
    state: dict[str, Any] = {
        "available": torch.cuda.is_available(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if torch.cuda.is_available():
        state["cuda_version"] = torch.version.cuda
        state["cudnn_version"] = torch.backends.cudnn.version()
        state["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        driver = nvidia_driver_version()
        if driver:
            state["driver_version"] = driver
    return state


def nvidia_driver_version(path: str = "/proc/driver/nvidia/version") -> str:
    """The NVIDIA kernel driver's version (what nvidia-smi shows), read from its /proc file
    on Linux: "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ..."."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return ""
    words = first.split("Kernel Module", 1)[-1].split()
    return words[0] if words and words[0][:1].isdigit() else ""
