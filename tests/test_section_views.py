"""The section view models: which rows, figures and notes the templates are handed.

Each view is built from a section the test makes; the templates only loop over the result.
"""

from __future__ import annotations

from typing import Any

from reporter.render.health_view import accuracy_view, health_view, probe_view
from reporter.render.rows import largest_in_order, shown
from reporter.render.templates import PRINT_ROWS
from reporter.report.health import (
    ActivationHealth,
    EvalAccuracy,
    HealthSection,
    LayerHealth,
    OptimizerComparison,
    ScalarCurve,
    TrainingLogs,
    TrainingProbe,
)


def _layer(i: int, params: int) -> LayerHealth:
    return LayerHealth(name=f"l{i}", type="Linear", params=params, weight_norm=1.0)


def test_largest_in_order_keeps_model_order_and_the_earlier_on_a_tie() -> None:
    items = [3, 9, 5, 9, 1]
    assert largest_in_order(items, lambda x: x, 3) == [9, 5, 9]
    assert largest_in_order(items, lambda x: x, 2) == [9, 9]
    assert largest_in_order([5, 7, 7, 7], lambda x: x, 2) == [7, 7]  # the first two sevens
    assert largest_in_order(items, lambda x: x, None) == items
    assert largest_in_order(items, lambda x: x, 5) == items


def test_shown_cuts_only_print_to_its_first_rows() -> None:
    rows = tuple(range(PRINT_ROWS + 3))
    assert shown(rows, for_print=True) == list(range(PRINT_ROWS))
    assert shown(rows, for_print=False) == list(rows)


def test_probe_in_print_keeps_the_largest_layers_in_model_order() -> None:
    sizes = [5, 50, 1, 40, 2, 30, 3, 20, 4, 10, 60, 6]  # 12 layers; print keeps 10
    probe = TrainingProbe(
        "sgd", 0.1, 3, 3, "loss_fn", layers=[_layer(i, n) for i, n in enumerate(sizes)]
    )
    shown = probe_view(probe, for_print=True)
    # the two smallest (1 and 2) are left out
    assert [layer.params for layer in shown.layers] == [5, 50, 40, 30, 3, 20, 4, 10, 60, 6]
    assert shown.layers_left_out == 2
    whole = probe_view(probe)
    assert whole.layers == probe.layers and whole.layers_left_out == 0


def test_probe_in_print_ranks_dead_units_then_zeros_and_sites_without_them_last() -> None:
    acts = [
        ActivationHealth(f"a{i}", "relu", 10, zero_fraction=0.1 * (i % 4), dead_fraction=0.0)
        for i in range(11)
    ]
    acts[6] = ActivationHealth("tanh", "tanh", 10, saturated_fraction=0.9)  # no zero figures
    acts[9] = ActivationHealth("dead", "relu", 10, zero_fraction=0.0, dead_fraction=0.5)
    probe = TrainingProbe("sgd", 0.1, 3, 3, "loss_fn", activations=acts)
    view = probe_view(probe, for_print=True)
    assert "tanh" not in [a.name for a in view.activations]  # the one left out
    assert [a.name for a in view.activations][:2] == ["a0", "a1"]  # call order kept
    assert view.activations_left_out == 1
    # Markdown names zeros where the site has them, else its saturation
    notes = {n.name: (n.fraction, n.what) for n in view.md_activations}
    assert notes["tanh"] == (0.9, "saturated") and notes["a1"][1] == "zeros"


def test_probe_losses_and_markdown_layer_count() -> None:
    layers = [_layer(i, 1) for i in range(45)]
    probe = TrainingProbe("adam", 1e-3, 3, 3, "loss_fn", losses=[2.345678, None], layers=layers)
    view = probe_view(probe)
    assert (view.first_loss, view.last_loss) == ("2.346", "NaN/inf")
    assert len(view.md_layers) == 40 and view.md_layers_left_out == 5
    assert probe_view(TrainingProbe("adam", 1e-3, 3, 0, "loss_fn")).first_loss == "NaN/inf"


def test_accuracy_table_and_confusion_matrix_choices() -> None:
    small = EvalAccuracy(2, 20, loss=None, per_class=[0.5] * 3, confusion=[[1, 0, 0]] * 3)
    view = accuracy_view(small)
    assert (view.loss, view.classes, view.confusion) == ("–", [0, 1, 2], "table")
    many = EvalAccuracy(2, 20, loss=0.5, per_class=[0.5] * 30, confusion=[[0] * 30] * 30)
    printed = accuracy_view(many, for_print=True)
    assert printed.confusion == "note"  # 30 × 30 does not print
    assert len(printed.classes) == 10 and printed.classes_left_out == 20
    assert accuracy_view(many).confusion == "table"
    # more than 100 classes: no per-class table, so no matrix either
    huge = EvalAccuracy(2, 20, per_class=[0.5] * 101, confusion=[[0] * 101] * 101)
    assert (accuracy_view(huge).classes, accuracy_view(huge).confusion) == ([], "")
    assert accuracy_view(EvalAccuracy(2, 20, per_class=[0.5])).confusion == ""


def test_health_view_loss_chart_alone_and_log_curve_names() -> None:
    comparison = OptimizerComparison(steps=5)
    logs = TrainingLogs("runs", 1, [ScalarCurve(".", f"t{i}", points=i) for i in range(14)])
    view = health_view(HealthSection(comparison=comparison, logs=logs))
    assert view.loss_alone and view.probe is None and view.accuracy is None
    assert view.log_curves[:2] == [("./t0", 0), ("./t1", 1)] and len(view.log_curves) == 12
    with_probe = HealthSection(probe=TrainingProbe("sgd", 0.1, 1, 1, "x"), comparison=comparison)
    assert not health_view(with_probe).loss_alone


def test_timing_rows_mark_the_knee_and_list_the_baseline_first() -> None:
    from reporter.diff import Detectable
    from reporter.render.timing_view import timing_rows
    from reporter.report.profile import BatchSweep, LatencyStats, SweepPoint, TimingSection
    from reporter.report.timing_counters import AllocatorExperiment, AllocatorVariant

    stats = LatencyStats(median=1.0, p90=1.0, p99=1.0, min=1.0, max=1.0, iqr=0.0, cv=0.0)
    sweep = BatchSweep(points=[SweepPoint(b, 1.0, 10.0 * b) for b in (1, 2, 4)], knee_batch=2)
    experiment = AllocatorExperiment(
        baseline=AllocatorVariant("glibc (default)"),
        variants=[AllocatorVariant("jemalloc", env={"LD_PRELOAD": "libjemalloc.so", "A": "1"})],
    )
    t = TimingSection(
        latency_ms=stats, throughput=1.0, batch_size=1, sweep=sweep, allocator_experiment=experiment
    )
    gate = Detectable(0.04251, 0.95, 0.05, 40, 40, 0.0219)
    rows = timing_rows(t, gate)
    assert [(q.batch, knee) for q, knee in rows.sweep] == [(1, False), (2, True), (4, False)]
    assert [(v.name, env) for v, env in rows.allocator] == [
        ("glibc (default)", []),
        ("jemalloc", ["LD_PRELOAD=libjemalloc.so", "A=1"]),
    ]
    assert rows.gate is not None
    assert (rows.gate.change, rows.gate.confidence, rows.gate.threshold) == ("4.3", "95", "5")
    assert (rows.gate.base_samples, rows.gate.with_more_samples) == (40, "2.2")
    bare = timing_rows(TimingSection(latency_ms=stats, throughput=1.0, batch_size=1), None)
    assert (bare.gate, bare.allocator, bare.sweep) == (None, [], [])


def _module(name: str, depth: int, total: float, self_us: float) -> Any:
    from reporter.report.profile import ModuleTime

    return ModuleTime(name, "Linear", depth, 1, total, self_us)


def test_profile_rows_in_print_keep_the_costliest_modules_in_model_order() -> None:
    from reporter.render.profile_view import profile_rows
    from reporter.report.profile import KernelTime, OpTime, ProfileSection

    modules = [_module("", 0, 100.0, 1.0)] + [
        _module(f"m{i}", 1, float(i % 5), float(i)) for i in range(12)
    ]
    p = ProfileSection(
        "inference",
        "cuda",
        ["traces/step.json"],
        modules=modules,
        top_ops=[OpTime(f"op{i}", 1, 1.0, 1.0) for i in range(12)],
        kernels=[KernelTime(f"k{i}", 1, 1.0) for i in range(3)],
        cpu_peak_bytes=1024,
    )
    printed = profile_rows(p, None, for_print=True)
    # 13 modules, 10 kept: the three with no time (m0, m5, m10) go; model order stays
    assert [m.name for m, _ in printed.modules] == [
        "",
        "m1",
        "m2",
        "m3",
        "m4",
        "m6",
        "m7",
        "m8",
        "m9",
        "m11",
    ]
    assert printed.modules_left_out == 3
    assert [o.name for o in printed.ops] == [
        f"op{i}" for i in range(10)
    ] and printed.ops_left_out == 2
    assert printed.kernels_left_out == 0
    # the chart's order: below the model only, most self time first
    assert [m.name for m in printed.by_self][:2] == ["m11", "m10"] and len(printed.by_self) == 12
    assert (printed.host_peak, printed.trace_dir, printed.overhead) == (1024, "traces", None)
    whole = profile_rows(p, None)
    assert [m for m, _ in whole.modules] == modules and whole.ops_left_out == 0
    assert [indent for _, indent in whole.modules][:2] == [10, 24]  # by depth


def test_profile_rows_host_peak_only_off_the_cpu_and_a_trace_folder_by_default() -> None:
    from reporter.render.profile_view import profile_rows
    from reporter.report.profile import LatencyStats, ProfileSection, TimingSection

    timing = TimingSection(
        latency_ms=LatencyStats(1.0, 1.0, 1.0, 1.0, 1.0), throughput=1.0, batch_size=1
    )
    timing.profiler_overhead = 1.5
    rows = profile_rows(ProfileSection("train", "cpu", [], cpu_peak_bytes=1024), timing)
    assert (rows.host_peak, rows.trace_dir, rows.overhead) == (None, "trace", 1.5)


def _summary_report(layers: int, frozen: int) -> Any:
    from reporter.report import ModelInfo, ParameterTotals, Report
    from reporter.report.static import FlopsSection, LayerRow, ModuleFlops, SummarySection

    rows = [LayerRow("", "Net", 0, [], 0, "", False)] + [
        LayerRow(f"l{i}", "Linear", 1 + i % 2, [], i, "yes", True) for i in range(1, layers)
    ]
    flops = FlopsSection(
        forward_total=1000,
        by_module=[ModuleFlops("l1", "Linear", 1, 250), ModuleFlops("l2", "Linear", 2, 0)],
    )
    return Report(
        model=ModelInfo("Net", "net.py", parameters=ParameterTotals(10, 10 - frozen, frozen, 40)),
        summary=SummarySection(depth=2, layers=rows),
        flops=flops,
    )


def test_summary_rows_carry_flops_share_and_indent() -> None:
    from reporter.render.summary_view import summary_view

    view = summary_view(_summary_report(4, frozen=0))
    assert [(r.layer.name, r.flops, r.share) for r in view.rows] == [
        ("", 0, None),
        ("l1", 250, 0.25),
        ("l2", 0, None),  # counted at 0: no share
        ("l3", 0, None),
    ]
    assert [r.indent_em for r in view.rows] == [0.4, 0.4 + 2 * 0.9, 0.4 + 0.9, 0.4 + 2 * 0.9]
    assert view.left_out == 0 and view.show_trainable
    # the root holds no parameters directly: the largest leaves only, most first
    assert [r.name for r in view.largest] == ["l3", "l2", "l1"]


def test_summary_in_print_keeps_the_costliest_rows_and_drops_trainable_when_none_frozen() -> None:
    from reporter.render.summary_view import summary_view

    printed = summary_view(_summary_report(25, frozen=0), for_print=True)
    assert len(printed.rows) == 20 and printed.left_out == 5
    # l1 has the FLOPs; then the most parameters (l24 down to l6), in table order
    assert [r.layer.name for r in printed.rows][:3] == ["l1", "l6", "l7"]
    assert not printed.show_trainable
    assert summary_view(_summary_report(25, frozen=2), for_print=True).show_trainable
    assert len(summary_view(_summary_report(25, frozen=0)).largest) == 10


def test_memory_fit_cells_name_the_smallest_degree_that_fits() -> None:
    from reporter.render.memory_view import fit_cell, memory_view
    from reporter.report.static import FitRow, MemorySection

    gib = 1 << 30
    # keys are strings: "16" sorts before "2" as text, not as a degree
    row = FitRow("Training", 30 * gib, {"1": 30 * gib, "16": 2 * gib, "2": 15 * gib, "4": 8 * gib})
    assert fit_cell(row, 40) == fit_cell(row, 30) and fit_cell(row, 40).text == "✓"
    assert (fit_cell(row, 16).text, fit_cell(row, 8).text, fit_cell(row, 2).text) == (
        "TP 2",
        "TP 4",
        "TP 16",
    )
    assert (fit_cell(row, 1).text, fit_cell(row, 1).fits) == ("✗", False)
    m = MemorySection(1, 2, 4, 0, 0, 0, fits=[row], device_sizes_gib=[1, 40])
    view = memory_view(m)
    assert view.resident_bytes == 7 and not view.from_eval
    assert [[c.text for c in cells] for _, cells in view.fits] == [["✗", "✓"]]
    from reporter.report.static import TrainingMemory

    m.training = TrainingMemory(0, 0, mode="eval")
    assert memory_view(m).from_eval
    m.training.mode = "train"
    assert not memory_view(m).from_eval


def test_finding_links_point_only_at_what_the_page_has() -> None:
    from reporter.render.view import finding_links, finding_sections
    from reporter.report import Finding, ModelInfo, Report
    from reporter.report.static import LayerRow, SummarySection

    rule, section = next((r, s) for r, s in finding_sections().items() if s == "timing")
    report = Report(
        model=ModelInfo("Net", "net.py"),
        summary=SummarySection(depth=1, layers=[LayerRow("fc", "Linear", 1, [], 1, "yes", True)]),
        findings=[
            Finding(rule, "warning", "slow", target="fc"),  # its layer row says where
            Finding(rule, "warning", "slow", target="elsewhere"),
            Finding("no-such-rule", "info", "x", target=None),
        ],
    )
    links = [lk for _, lk in finding_links(report, ["summary", "timing"], {rule: "doc"})]
    assert [(lk.rule_doc, lk.layer, lk.graph, lk.section) for lk in links] == [
        (True, True, False, ""),
        (True, False, False, section),
        (False, False, False, ""),
    ]
    # the section is not on the page: no link to it
    assert finding_links(report, ["summary"], {})[1][1].section == ""


def test_budget_rows_and_severity_counts() -> None:
    from reporter.render.view import budget_rows, severity_counts
    from reporter.report import BudgetResult, Finding

    budgets = [BudgetResult("params", "10M", s, "m") for s in ("ok", "crossed", "unmeasured")]
    assert [(r.css, r.mark) for r in budget_rows(budgets)] == [
        ("", ":white_check_mark: ok"),
        ("failed", ":x: **crossed**"),
        ("skipped", ":grey_question: unmeasured"),
    ]
    findings = [Finding("r", s, "t") for s in ("info", "critical", "info")]
    assert list(severity_counts(findings).items()) == [("critical", 1), ("info", 2)]


def test_rank_rows_pair_each_rank_with_its_trace_figures() -> None:
    from reporter.render.distributed_view import rank_rows
    from reporter.report.distributed import DistributedSection, RankComm, RankRun

    section = DistributedSection(
        world_size=3,
        ranks=[RankRun(0), RankRun(1, state="failed"), RankRun(2)],
        comm=[RankComm(2, step_time_us=1.0), RankComm(0, step_time_us=2.0), RankComm(2, steps=9)],
    )
    rows = rank_rows(section)
    assert [r.rank for r, _ in rows] == [0, 1, 2]
    assert rows[1][1] is None  # no trace from the failed rank
    # a rank listed twice: its first entry
    assert (rows[0][1].step_time_us, rows[2][1].step_time_us) == (2.0, 1.0)  # type: ignore[union-attr]


def test_diff_view_judged_by_cell_thresholds_in_percent_and_budget_marks() -> None:
    from reporter.diff import ReportDiff
    from reporter.render.diff_render import judged_by, percents, template_context
    from reporter.report import BudgetResult

    assert judged_by("95% interval +1.0% … +2.0%", "") == "95% interval +1.0% … +2.0%"
    assert judged_by("", "noisy") == "noisy"
    assert judged_by("i", "n") == "i; n" and judged_by("", "") == ""
    diff = ReportDiff("A", "B", "a.py", "b.py", module_threshold=0.2, confidence=0.99)
    assert percents(diff) == {
        "module_threshold": "20",
        "confidence": "99",
        "threshold": "%.0f" % (diff.threshold * 100),
        "false_alarm": "0.5",  # one tail of the 1% outside the interval
    }
    budgets = [BudgetResult("params", "10M", s, "m") for s in ("ok", "crossed", "unmeasured")]
    rows = template_context(diff, budgets)["budgets"]
    # unlike the report's table, an unmeasured budget's row is not greyed in the diff
    assert [(r.css, r.mark) for r in rows] == [
        ("", ":white_check_mark:"),
        ("failed", ":x:"),
        ("", ":grey_question:"),
    ]
