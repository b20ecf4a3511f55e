"""Trace analysis: Kineto (torch.profiler) trace files -> a TraceSection of the Report.

    analyse_paths([Path("run/trace")])  # one file per rank; folders are searched

No torch import: traces recorded on a GPU cluster are analysed anywhere.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from reporter.errors import UsageError
from reporter.report.trace import RankFigures, TraceSection
from reporter.trace.analyse import analyse_rank
from reporter.trace.events import TraceEvents
from reporter.trace.load import find_trace_files, gc_paused, read_trace
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
    paths: list[Path],
    *,
    fast: bool = True,
    timings: list[tuple[float, float]] | None = None,
    jobs: int | None = None,
) -> TraceSection:
    """Analyse trace files (one per rank) or folders of them into one TraceSection.

    ``fast=False`` parses with the stdlib json, not msgspec, then the same structs (tests).
    ``timings``, if given, gets (load seconds, analysis seconds) per file (benchmarks).
    ``jobs``: processes analysing files at once; None picks one per core (at most one
    per file) when the files hold enough to pay for starting them, else 1. Each process
    holds one file at a time, so the peak memory is ``jobs`` times a file's.
    """
    started = time.perf_counter()
    files = expand_paths(paths)
    work = [(f, i, fast) for i, f in enumerate(files)]
    jobs = choose_jobs(files) if jobs is None else max(1, min(jobs, len(files)))
    if jobs > 1:
        # spawn, not fork: the CLI runs a spinner thread, and a forked child of a process
        # with threads may hang on a lock that thread held.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            results = list(pool.map(analyse_file, work))
    else:
        results = [analyse_file(w) for w in work]
    ranks = [rank for rank, _, _ in results]
    if timings is not None:
        timings.extend((load, analyse) for _, load, analyse in results)
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


# Files holding less JSON than this in all are analysed in this process: starting a
# worker (an interpreter and the imports) costs about what analysing 20 MB of JSON does.
POOL_MIN_BYTES = 20 << 20


def choose_jobs(files: list[Path]) -> int:
    """One process per core (at most one per file) for large sets of files, else 1."""
    if len(files) < 2:
        return 1
    try:
        total = sum(json_size(f) for f in files)
    except OSError:
        return 1  # read_bytes words the error
    if total < POOL_MIN_BYTES:
        return 1
    return max(1, min(len(files), os.cpu_count() or 1))


def json_size(path: Path) -> int:
    """The size of a file's JSON text: for gzip the size its trailer records (ISIZE)."""
    size = path.stat().st_size
    if size < 18:
        return size
    with path.open("rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return size
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def analyse_file(work: tuple[Path, int, bool]) -> tuple[RankFigures, float, float]:
    """One trace file's figures and (load, analysis) seconds; also run in worker processes."""
    path, index, fast = work
    with gc_paused():  # while one file is read and analysed
        loading = time.perf_counter()
        ev = read_trace(path, fast)
        if not ev.host and not ev.gpu and not ev.bad_events:
            raise UsageError(
                f"{path} has no PyTorch profiler events (no cpu_op, kernel or other Kineto "
                "categories): not a Kineto trace"
            )
        check_times(ev, path)
        analysing = time.perf_counter()
        known = ev.rank is not None
        rank = analyse_rank(ev, ev.rank if known else index, known)
        del ev
        return rank, analysing - loading, time.perf_counter() - analysing


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
