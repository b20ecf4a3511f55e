"""Section written by the graph stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GraphSection:
    svg: str = ""
