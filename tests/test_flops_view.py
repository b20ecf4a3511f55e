"""The FLOPs section's page: which totals exist, shares, print cuts, Markdown's top modules."""

from __future__ import annotations

from reporter.render.flops_view import PRINT_OPS, SCREEN_UNCOUNTED, flops_page
from reporter.render.templates import PRINT_ROWS
from reporter.report.static import FlopsSection, ModuleFlops, OpCount


def ops(n: int) -> list[OpCount]:
    return [OpCount(op=f"aten::op{i}", calls=i + 1, flops=1000 * (n - i)) for i in range(n)]


def test_backward_and_training_step_only_with_a_backward_pass() -> None:
    forward_only = flops_page(FlopsSection(forward_total=2000))
    assert forward_only.forward == "2,000 (2.00 kFLOP)"
    assert forward_only.backward == "" and forward_only.training_step == ""
    assert forward_only.md_totals == "Forward 2.00 kFLOP (2,000)."
    both = flops_page(FlopsSection(forward_total=2000, backward_total=4000))
    assert both.training_step == "6.00 kFLOP"
    assert both.md_totals == "Forward 2.00 kFLOP (2,000), backward 4.00 kFLOP."


def test_a_zero_backward_total_is_still_shown() -> None:
    assert flops_page(FlopsSection(forward_total=10, backward_total=0)).backward == "0 (0 FLOP)"


def test_share_of_the_forward_total_and_none_when_it_is_zero() -> None:
    assert flops_page(FlopsSection(forward_total=4000, by_op=ops(1))).by_op[0].share == "25.0%"
    assert flops_page(FlopsSection(forward_total=0, by_op=ops(1))).by_op[0].share == ""


def test_print_cuts_ops_and_uncounted_with_notes() -> None:
    fl = FlopsSection(forward_total=1, by_op=ops(PRINT_OPS + 2), uncounted_ops=ops(30))
    printed = flops_page(fl, for_print=True)
    assert len(printed.by_op) == PRINT_OPS
    assert printed.by_op_note.startswith(f"The {PRINT_OPS} ops with the most FLOPs; all ")
    assert printed.uncounted_inline
    assert len(printed.uncounted) == PRINT_ROWS and printed.uncounted_more == 30 - PRINT_ROWS
    screen = flops_page(fl)
    assert len(screen.by_op) == PRINT_OPS + 2 and screen.by_op_note == ""
    assert not screen.uncounted_inline
    assert len(screen.uncounted) == SCREEN_UNCOUNTED and screen.uncounted_more == 5


def test_markdown_lists_the_direct_children_with_flops_most_first() -> None:
    modules = [
        ModuleFlops(name="", type="Net", depth=0, forward=100),
        ModuleFlops(name="a", type="Linear", depth=1, forward=10, share=0.1),
        ModuleFlops(name="b", type="Linear", depth=1, forward=0),
        ModuleFlops(name="c", type="Conv2d", depth=1, forward=90, share=0.9),
        ModuleFlops(name="c.x", type="Conv2d", depth=2, forward=90),
    ]
    page = flops_page(FlopsSection(forward_total=100, by_module=modules))
    assert [m[0] for m in page.md_modules] == ["c", "a"]
    assert page.md_modules[0][3] == "90.0%"


def test_causal_totals_in_markdown() -> None:
    fl = FlopsSection(forward_total=10, forward_causal_total=6000, backward_causal_total=None)
    text = flops_page(fl).md_attention
    assert text.endswith("lets through only: forward 6.00 kFLOP.")
    assert flops_page(FlopsSection(forward_total=10)).md_attention.endswith("does.")
