"""perfreport: one report on a PyTorch model's size, cost, speed and bottlenecks."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `reporter.analyze` imports torch: only when used, so the CLI starts fast.
    if name == "analyze":
        from reporter.api import analyze

        return analyze
    raise AttributeError(f"module 'reporter' has no attribute {name!r}")
