"""The timing section for its templates: the line charts as SVG strings, and the rows and
figures its tables and notes show (which row is the knee, the regression gate in percent)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reporter.render.charts import line_chart
from reporter.report.profile import SweepPoint, TimingSection
from reporter.report.timing_counters import AllocatorVariant

if TYPE_CHECKING:
    from reporter.diff import Detectable

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


@dataclass
class RegressionGate:
    """What `perfreport diff` could tell apart between two runs like this one, in percent."""

    change: str  # "4.2": the smallest slowdown of the median it calls worse
    confidence: str
    threshold: str
    base_samples: int
    with_more_samples: str  # the same with 4x the samples


@dataclass
class TimingRows:
    gate: RegressionGate | None = None
    # the allocator experiment's processes, baseline first, each with its added "NAME=value"s
    allocator: list[tuple[AllocatorVariant, list[str]]] = field(default_factory=list)
    sweep: list[tuple[SweepPoint, bool]] = field(default_factory=list)  # (point, is the knee)


def regression_gate(d: Detectable) -> RegressionGate:
    return RegressionGate(
        change="%.1f" % (d.change * 100),
        confidence="%.0f" % (d.confidence * 100),
        threshold="%.0f" % (d.threshold * 100),
        base_samples=d.base_samples,
        with_more_samples="%.1f" % (d.with_more_samples * 100),
    )


def timing_rows(t: TimingSection, detectable: Detectable | None) -> TimingRows:
    ax = t.allocator_experiment
    return TimingRows(
        gate=regression_gate(detectable) if detectable else None,
        allocator=[
            (v, [f"{k}={val}" for k, val in v.env.items()]) for v in [ax.baseline, *ax.variants]
        ]
        if ax
        else [],
        sweep=[(q, q.batch == t.sweep.knee_batch) for q in t.sweep.points] if t.sweep else [],
    )
