"""The profile and timing charts: bar lengths and line points against the values drawn,
escaped labels, the knee mark, and which samples are numbered."""

from __future__ import annotations

import re

import pytest

from reporter.render.charts import hbar_chart, line_chart
from reporter.render.timing_view import sample_labels


def bar_widths(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect x="190" y="\d+" width="([\d.]+)"', svg)]


def test_bars_are_proportional_to_the_values_and_labels_escaped() -> None:
    svg = hbar_chart([("<mm>", 300.0), ("add & mul", 150.0), ("zero", 0.0)], "us")
    # plot width 560 - 190 - 80 = 290 px for the largest value
    assert bar_widths(svg) == [290.0, 145.0, 0.0]
    assert "&lt;mm&gt;" in svg and "add &amp; mul" in svg and "<mm>" not in svg
    assert "300.0 µs" in svg and "150.0 µs" in svg
    assert svg.count("<rect") == 3
    assert 'height="68"' in svg  # 3 rows of 16 + 5, and the last gap of 5


def test_long_bar_labels_are_cut_but_kept_whole_in_the_title() -> None:
    name = "encoder.layers.11.attention.output.dense"  # 40 characters
    svg = hbar_chart([(name, 1.0)], "ms")
    assert f">{name[:29]}…<title>{name}</title>" in svg
    assert "1.000 ms" in svg


def test_no_rows_draw_an_empty_frame() -> None:
    assert hbar_chart([], "us").count("<rect") == 0


def polyline(svg: str) -> list[tuple[float, float]]:
    points = re.search(r'<polyline points="([^"]*)"', svg)
    assert points is not None
    return [tuple(map(float, p.split(","))) for p in points.group(1).split()]  # type: ignore[misc]


def test_line_points_are_evenly_spaced_and_scaled_from_zero() -> None:
    svg = line_chart([(1, 2.0), (2, 4.0), (3, 1.0)], "sample", "ms <per> call", "ms")
    # plot: x from 84 over 456 px, y from 14 down 186 px, the largest value at the top
    assert polyline(svg) == [(84.0, 107.0), (312.0, 14.0), (540.0, 153.5)]
    assert svg.count("<circle") == 3 and "ms &lt;per&gt; call" in svg
    assert ">4.000 ms</text>" in svg and ">2.000 ms</text>" in svg  # top and middle ticks


def test_the_knee_is_marked_at_its_label() -> None:
    svg = line_chart([(1, 10.0), (2, 30.0), (4, 40.0)], "batch", "samples/s", "count", mark_x=2)
    assert 'x1="312.0" y1="14" x2="312.0"' in svg and ">knee</text>" in svg
    assert ">40</text>" in svg and ">20</text>" in svg  # count ticks in %.3g
    assert ">knee<" not in line_chart([(1, 1.0)], "b", "s", "count", mark_x=8)


def test_lean_lines_drop_empty_labels_and_dots_past_sixty_points() -> None:
    points = [(i if i % 10 == 0 else "", 1.0) for i in range(61)]
    lean = line_chart(points, "sample", "ms", "ms", lean=True)
    full = line_chart(points, "sample", "ms", "ms")
    assert lean.count("<circle") == 0 and full.count("<circle") == 61
    assert lean.count('text-anchor="middle" fill="#475467"') == 7  # 0, 10, ..., 60
    assert len(polyline(lean)) == len(polyline(full)) == 61


@pytest.mark.parametrize(
    ("count", "for_print", "numbered"),
    [
        (25, False, [1, 10, 20, 25]),
        (30, False, [1, 10, 20, 30]),
        # print, 250 samples: a number every 30; 250 is 10 past 240, too close to label
        (250, True, [1, 30, 60, 90, 120, 150, 180, 210, 240]),
        (255, True, [1, 30, 60, 90, 120, 150, 180, 210, 240, 255]),
        (5, True, [1, 5]),
        (0, True, []),
    ],
)
def test_sample_numbers(count: int, for_print: bool, numbered: list[int]) -> None:
    labels = sample_labels(count, for_print=for_print)
    assert len(labels) == count
    assert [x for x in labels if x != ""] == numbered
    assert all(x in ("", i) for i, x in enumerate(labels, start=1))


def test_trace_charts_convert_microseconds_to_milliseconds() -> None:
    from reporter.render.trace_view import trace_view
    from reporter.report.trace import (
        Breakdown,
        GpuFigures,
        IdleSplit,
        OpRow,
        OverallFigures,
        RankFigures,
        TraceSection,
    )

    breakdown = Breakdown(compute_us=3000.0, communication_us=500.0, idle_us=1500.0)
    idle = IdleSplit(host_wait_us=1000.0, short_gap_us=500.0)
    gpu = GpuFigures(breakdown=breakdown, idle=idle)
    cpu_only = RankFigures(rank=1, cpu_ops=[OpRow(name="aten::<mm>", self_us=2500.0)])
    one = trace_view(
        TraceSection(
            ranks=[RankFigures(rank=0, gpu=gpu)],
            overall=OverallFigures(has_gpu=True, breakdown=breakdown),
        )
    )
    # 5 ms window: compute 3 ms (60%), communication 0.5 ms, idle 1.5 ms; no memcpy/memset
    assert "compute: 3.0 ms (60.0%)" in one.gpu_time_svg
    assert "communication: 0.5 ms (10.0%)" in one.gpu_time_svg
    assert "idle: 1.5 ms (30.0%)" in one.gpu_time_svg and "memcpy" not in one.gpu_time_svg
    assert "rank 0: host wait: 1.0 ms (66.7%)" in one.idle_svg
    assert one.cpu_ops_svgs == [""]  # a GPU rank: its kernels are charted instead
    two = trace_view(TraceSection(ranks=[RankFigures(rank=0, gpu=gpu), cpu_only]))
    assert two.gpu_time_svg == two.idle_svg == ""  # no GPU overall
    assert two.cpu_ops_svgs[0] == "" and "aten::&lt;mm&gt;: 2.5 ms" in two.cpu_ops_svgs[1]
    many = trace_view(
        TraceSection(
            ranks=[RankFigures(rank=0, gpu=gpu), cpu_only],
            overall=OverallFigures(has_gpu=True),
        )
    )
    assert "rank 0: compute: 3.0 ms" in many.gpu_time_svg and "rank 1" not in many.gpu_time_svg


def test_distributed_chart_has_a_bar_per_rank_with_a_step_time() -> None:
    from reporter.render.distributed_view import rank_time_svg
    from reporter.report.distributed import DistributedSection, RankComm

    section = DistributedSection(
        world_size=2,
        comm=[
            RankComm(rank=0, communication_per_step_us=500.0, compute_per_step_us=2500.0),
            RankComm(rank=1, communication_per_step_us=900.0),  # no step time
        ],
    )
    svg = rank_time_svg(section)
    assert "rank 0: compute: 2.5 ms (83.3%)" in svg and "rank 0: communication: 0.5 ms" in svg
    assert "rank 1" not in svg
    assert rank_time_svg(DistributedSection(world_size=1)) == ""


def test_print_keeps_the_costliest_layer_rows() -> None:
    from reporter.render.summary_view import print_rows_kept

    costs = [(10, 1), (0, 5), (10, 1), (3, 0), (0, 7)]
    # by FLOPs, then parameters, then the earlier row: rows 0 and 2 (10 FLOPs), then row 3
    assert print_rows_kept(costs, rows=3) == [0, 2, 3]
    assert print_rows_kept(costs, rows=4) == [0, 2, 3, 4]  # 0 FLOPs: 7 parameters first
    assert print_rows_kept(costs, rows=5) == []  # all fit: keep every row


def test_print_lists_the_least_accurate_classes_in_class_order() -> None:
    from reporter.render.health_view import class_rows

    per_class: list[float | None] = [0.9] * 25
    per_class[3], per_class[7], per_class[20] = 0.1, None, 0.5
    assert class_rows(per_class) == list(range(25))
    shown = class_rows(per_class, for_print=True)
    # PRINT_ROWS // 2 = 10: classes 3 and 20, then eight of the 0.9s (lowest index first);
    # class 7 has no samples and sorts last
    assert shown == [0, 1, 2, 3, 4, 5, 6, 8, 9, 20]
    assert class_rows(per_class[:20], for_print=True) == list(range(20))
