"""Number formatting: counts, FLOPs, bytes, times, rates, percentages, shapes.

Plain text with no markup, so the data side (rules, budgets, the graph builder) words its
messages with the same numbers the views show, without importing a view.
reporter.render.format re-exports these as template filters.
"""

from __future__ import annotations

import math
from typing import Any


def finite(value: object) -> bool:
    """A real number: not None, NaN or infinite (report fields read from JSON may be any)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def count(n: float | None) -> str:
    """124439808 -> '124.44 M'; small numbers stay exact."""
    if n is None:
        return "–"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def exact(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def flops(n: float | None) -> str:
    """191879168 -> '191.88 MFLOP'."""
    if n is None:
        return "–"
    text = count(n)
    return text + "FLOP" if text[-1].isalpha() else text + " FLOP"


def nbytes(n: float | None) -> str:
    """Binary units, as memory is sized: 1 MiB = 1,048,576 bytes."""
    if n is None:
        return "–"
    for factor, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{int(n)} B"


def ms(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n:.3f} ms" if n < 10 else f"{n:.1f} ms"


def us(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1000:.2f} ms" if n >= 1000 else f"{n:.1f} µs"


def rate(x: float | None) -> str:
    """Samples per second with thousands separated: 139,577.8."""
    return "–" if x is None else f"{x:,.1f}"


def percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def shape_text(dims: Any) -> str:
    """One tensor's sizes: (4, 64) -> '4×64'; a scalar's () -> 'scalar'."""
    return "×".join(str(v) for v in dims) if len(dims) else "scalar"


def dtype_name(dtype: Any) -> str:
    """torch.float32 -> 'float32'."""
    return str(dtype).removeprefix("torch.")


def shape(s: Any) -> str:
    """[[1, 10]] -> '1×10'; several outputs joined by ', '."""
    if not s:
        return "–"
    if isinstance(s, (list, tuple)) and all(isinstance(v, int) for v in s):
        return "×".join(str(v) for v in s)
    if isinstance(s, (list, tuple)):
        return ", ".join(shape(v) for v in s)
    return str(s)
