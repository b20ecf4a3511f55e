"""How the rules that read per-rank figures (a trace, the distributed section) put them
into findings: times as milliseconds and shares as percentages in evidence, the ranks that
ran GPU work, and a rank named in titles and evidence only when there are several."""

from __future__ import annotations

from collections.abc import Sequence

from reporter.report.trace import RankFigures, TraceSection


def ms(us: float | None) -> float | None:
    """Microseconds as milliseconds, rounded for evidence."""
    return None if us is None else round(us / 1000.0, 3)


def ms_by_rank(values_us: dict[int, float]) -> dict[str, float | None]:
    """{"rank N": milliseconds} in rank order, for a figure compared across ranks."""
    return {f"rank {r}": ms(v) for r, v in sorted(values_us.items())}


def pct(share: float | None) -> str | None:
    return None if share is None else f"{100 * share:.1f}%"


def gpu_ranks(trace: TraceSection) -> list[RankFigures]:
    """The ranks whose trace holds GPU work in a window of some length."""
    return [r for r in trace.ranks if r.gpu is not None and r.window_us > 0]


def rank_key(ranks: Sequence[RankFigures], r: RankFigures) -> int | None:
    """The rank for evidence: None (left out) when the trace has only one."""
    return r.rank if len(ranks) > 1 else None


def rank_suffix(ranks: Sequence[RankFigures], r: RankFigures) -> str:
    """' (rank N)' for a title when the trace has several ranks."""
    return f" (rank {r.rank})" if len(ranks) > 1 else ""
