"""The memory section's tables for its templates: the training base figure, and for each
scenario and device size the smallest tensor-parallel degree that fits."""

from __future__ import annotations

from dataclasses import dataclass, field

from reporter.report.static import FitRow, MemorySection

GIB = 1 << 30


@dataclass
class FitCell:
    text: str  # "✓" (fits whole), "TP n" (fits split n ways) or "✗" (not even split 8 ways)
    fits: bool


@dataclass
class MemoryView:
    resident_bytes: int  # weights, buffers and inputs: the training estimate's base
    from_eval: bool  # the training figures come from an eval-mode pass
    fits: list[tuple[FitRow, list[FitCell]]] = field(default_factory=list)


def fit_cell(row: FitRow, gib: int) -> FitCell:
    """The smallest degree whose share fits a device of `gib` GiB."""
    degrees = [int(d) for d, size in row.per_device.items() if size <= gib * GIB]
    if not degrees:
        return FitCell("✗", False)
    degree = min(degrees)
    return FitCell("✓" if degree == 1 else f"TP {degree}", True)


def memory_view(m: MemorySection) -> MemoryView:
    return MemoryView(
        resident_bytes=m.parameter_bytes + m.buffer_bytes + m.input_bytes,
        from_eval=m.training is not None and m.training.mode == "eval",
        fits=[(row, [fit_cell(row, g) for g in m.device_sizes_gib]) for row in m.fits],
    )
