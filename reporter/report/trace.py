"""Section written by the trace stage and `perfreport trace`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TraceSection:
    pass
