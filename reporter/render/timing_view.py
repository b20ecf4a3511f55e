"""The timing section's line charts, as SVG strings its template inserts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from reporter.render.charts import line_chart
from reporter.report.profile import TimingSection

LABEL_EVERY = 10  # a sample number under every tenth point


@dataclass
class TimingView:
    samples_svg: str  # each timed sample in order
    sweep_svg: str  # throughput per batch size, the knee marked ("" without a sweep)


def sample_labels(count: int, *, for_print: bool = False) -> list[int | str]:
    """The x label of each sample: its number (from 1) on the first, every LABEL_EVERY-th
    and the last, else "". In print the step grows in tens so at most about ten are
    written, and the last is left out where it would crowd the labelled one before it."""
    every = max(LABEL_EVERY, math.ceil(count / 100) * 10) if for_print else LABEL_EVERY
    labels: list[int | str] = []
    for i in range(1, count + 1):
        last = i == count and (not for_print or i % every >= every // 2)
        labels.append(i if i == 1 or i % every == 0 or last else "")
    return labels


def timing_view(t: TimingSection, *, for_print: bool = False) -> TimingView:
    labels = sample_labels(len(t.samples_ms), for_print=for_print)
    sweep = t.sweep
    return TimingView(
        samples_svg=line_chart(
            list(zip(labels, t.samples_ms, strict=True)),
            "sample",
            "ms per call",
            "ms",
            lean=for_print,
        ),
        sweep_svg=line_chart(
            [(q.batch, q.throughput) for q in sweep.points],
            "batch size",
            "samples/s",
            "count",
            mark_x=sweep.knee_batch,
            lean=for_print,
        )
        if sweep
        else "",
    )
