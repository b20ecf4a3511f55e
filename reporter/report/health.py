"""Section written by the health stage (training health)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HealthSection:
    pass
