"""Trace analysis: Kineto (torch.profiler) trace files -> a TraceSection of the Report.

    analyse_paths([Path("run/trace")])  # one file per rank; folders are searched

No torch import: traces recorded on a GPU cluster are analysed anywhere.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from reporter.errors import UsageError
from reporter.report.trace import TraceSection
from reporter.trace.analyse import analyse_rank
from reporter.trace.events import TraceEvents
from reporter.trace.load import find_trace_files, read_trace
from reporter.trace.ranks import merge_kernel_rows, overall_figures, rank_spread

__all__ = ["analyse_paths", "find_trace_files"]


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders replaced by the trace files in them; no file twice."""
    out: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        for f in find_trace_files(p):
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    if not out:
        raise UsageError("no trace files given")
    return out


def analyse_paths(
    paths: list[Path], *, fast: bool = True, timings: list[tuple[float, float]] | None = None
) -> TraceSection:
    """Analyse trace files (one per rank) or folders of them into one TraceSection.

    ``fast=False`` forces the stdlib JSON path even when msgspec is installed (tests).
    ``timings``, if given, gets (load seconds, analysis seconds) per file (benchmarks).
    """
    started = time.perf_counter()
    files = expand_paths(paths)
    ranks = []
    for index, path in enumerate(files):
        # The GC would rescan the heap of fresh records many times for nothing: pause it
        # while one file is read and analysed (nothing here builds reference cycles).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            loading = time.perf_counter()
            ev = read_trace(path, fast)
            if not ev.host and not ev.gpu:
                raise UsageError(
                    f"{path} has no PyTorch profiler events (no cpu_op, kernel or other Kineto "
                    "categories): not a Kineto trace"
                )
            check_times(ev, path)
            analysing = time.perf_counter()
            known = ev.rank is not None
            ranks.append(analyse_rank(ev, ev.rank if known else index, known))
            del ev
            if timings is not None:
                done = time.perf_counter()
                timings.append((analysing - loading, done - analysing))
        finally:
            if was_enabled:
                gc.enable()
    section = TraceSection(
        files=[str(f) for f in files],
        ranks=sorted(ranks, key=lambda r: (r.rank, r.file)),
        overall=overall_figures(ranks),
        top_kernels=merge_kernel_rows(ranks),
    )
    section.notes = _section_notes(section)
    if len(ranks) > 1:
        section.spread = rank_spread(section.ranks)
    section.analysis_seconds = time.perf_counter() - started
    return section


def check_times(ev: TraceEvents, path: Path) -> None:
    """Refuse a trace where most timed events have unusable times (the rest are noted)."""
    kept = len(ev.host) + len(ev.gpu)
    if ev.bad_events > kept:
        names = ", ".join(repr(n) for n, _ in ev.bad_event_names.most_common(3))
        raise UsageError(
            f"{path}: {ev.bad_events} of {ev.bad_events + kept} timed events have unusable "
            f"times (NaN, infinite or non-numeric timestamps, negative durations; e.g. "
            f"{names}): not a usable trace"
        )


def _section_notes(section: TraceSection) -> list[str]:
    notes = []
    ranks = section.ranks
    if len(ranks) == 1:
        notes.extend(ranks[0].notes)
    else:
        for r in ranks:
            notes.extend(f"rank {r.rank}: {n}" for n in r.notes)
        counts = Counter(r.rank for r in ranks)
        dupes = sorted(r for r, n in counts.items() if n > 1)
        if dupes:
            notes.append(
                f"several files claim rank {', '.join(map(str, dupes))}: are they from "
                "different runs? Compare files of one run"
            )
        steps = sorted({r.step_count for r in ranks})
        if len(steps) > 1:
            notes.append(f"the ranks recorded different numbers of steps ({steps})")
        worlds = {r.world_size for r in ranks if r.world_size}
        if worlds and max(worlds) > len(ranks):
            notes.append(
                f"{len(ranks)} of {max(worlds)} ranks' traces were given: the spread covers "
                "only these"
            )
    return notes
