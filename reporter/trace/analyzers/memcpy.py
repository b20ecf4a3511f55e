"""Memory copies by direction and memory kind; pageable copies."""

from __future__ import annotations

from collections.abc import Sequence

from reporter.report.trace import MemcpyFigures, MemcpyRow
from reporter.trace.analyzers.names import parse_memcpy
from reporter.trace.events import GpuEvent


def memcpy_figures(copies: Sequence[GpuEvent]) -> MemcpyFigures:
    out = MemcpyFigures()
    rows: dict[tuple[str, str, str], MemcpyRow] = {}
    kinds: dict[str, tuple[str, str, str]] = {}  # by name: parse each copy kind once
    for g in copies:
        kind = kinds.get(g.name)
        if kind is None:
            kind = kinds[g.name] = parse_memcpy(g.name)
        direction, src, dst = kind
        row = rows.get((direction, src, dst))
        if row is None:
            row = rows[(direction, src, dst)] = MemcpyRow(direction, src, dst)
        d = g.end - g.start
        row.count += 1
        row.bytes += g.bytes
        row.total_us += d
        out.count += 1
        out.bytes += g.bytes
        out.total_us += d
        if "Pageable" in (src, dst):
            out.pageable_count += 1
            out.pageable_bytes += g.bytes
            out.pageable_us += d
    out.rows = sorted(rows.values(), key=lambda r: -r.total_us)
    return out
