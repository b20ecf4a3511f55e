"""Memory: peak allocated and reserved bytes per device ([memory] samples)."""

from __future__ import annotations

from reporter.report.trace import MemoryPeak
from reporter.trace.events import TraceEvents


def memory_peaks(ev: TraceEvents) -> list[MemoryPeak]:
    peaks: dict[str, MemoryPeak] = {}
    for m in ev.memory:
        p = peaks.get(m.device)
        if p is None:
            p = peaks[m.device] = MemoryPeak(m.device)
        p.peak_allocated_bytes = max(p.peak_allocated_bytes, m.allocated)
        p.peak_reserved_bytes = max(p.peak_reserved_bytes, m.reserved)
    capacity = {f"cuda:{d.id}": d.total_memory for d in ev.devices if d.total_memory}
    for p in peaks.values():
        p.capacity_bytes = capacity.get(p.device)
        if p.capacity_bytes:
            p.share = p.peak_allocated_bytes / p.capacity_bytes
    return sorted(peaks.values(), key=lambda p: p.device)
