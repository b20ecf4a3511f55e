"""The FLOPs section, decided and formatted for templates/sections/flops.{html,md}.j2.

Which totals exist, each op's share, the print cuts and their notes, and the Markdown's top
modules are chosen here; the templates only loop. Text is plain: the templates escape it.
"""

from __future__ import annotations

from dataclasses import dataclass

from reporter.render.cells import Num
from reporter.render.rows import most_kept_note, shown
from reporter.render.templates import PRINT_ROWS
from reporter.report.static import FlopsSection, ModuleFlops, OpCount
from reporter.units import exact, flops, percent

PRINT_OPS = PRINT_ROWS // 2  # by op: half a page beside the uncounted ops
SCREEN_UNCOUNTED = 25
MD_MODULES = 10


@dataclass(frozen=True)
class OpRow:
    op: str
    calls: str
    flops: Num
    share: str  # of the forward total, "" when it is zero


@dataclass(frozen=True)
class FlopsPage:
    forward: str  # "501,743,616 (501.74 MFLOP)"
    backward: str  # "" without a backward pass
    training_step: str  # forward + backward, "" without a backward pass
    forward_causal: str  # "" when no causal or masked attention ran
    backward_causal: str
    by_op: tuple[OpRow, ...]
    by_op_note: str  # print: the first rows only
    uncounted: tuple[tuple[str, str], ...]  # (op, calls), cut to what the page lists
    uncounted_more: int  # left to report.json
    uncounted_inline: bool  # print: one line instead of a second table
    md_totals: str
    md_attention: str
    md_modules: tuple[tuple[str, str, str, str], ...]  # name, type, forward FLOPs, share


def total_text(n: int | None) -> str:
    return "" if n is None else f"{exact(n)} ({flops(n)})"


def op_row(o: OpCount, forward_total: int) -> OpRow:
    share = percent(o.flops / forward_total) if forward_total else ""
    return OpRow(o.op, str(o.calls), Num(flops(o.flops), str(o.flops)), share)


def md_totals(fl: FlopsSection) -> str:
    text = f"Forward {flops(fl.forward_total)} ({exact(fl.forward_total)})"
    if fl.backward_total is not None:
        text += f", backward {flops(fl.backward_total)}"
    return text + "."


def md_attention(fl: FlopsSection) -> str:
    text = "Attention counts every query-key pair (S × S), causal or not, as FlopCounterMode does"
    if fl.forward_causal_total is not None:
        text += (
            "; causal or masked attention ran, and over the pairs it lets through only: "
            f"forward {flops(fl.forward_causal_total)}"
        )
        if fl.backward_causal_total is not None:
            text += f", backward {flops(fl.backward_causal_total)}"
    return text + "."


def top_modules(fl: FlopsSection) -> list[ModuleFlops]:
    """The model's direct children with forward FLOPs, most first."""
    children = [m for m in fl.by_module if m.depth == 1 and m.forward]
    return sorted(children, key=lambda m: m.forward, reverse=True)[:MD_MODULES]


def flops_page(fl: FlopsSection, *, for_print: bool = False) -> FlopsPage:
    backward = fl.backward_total
    listed = PRINT_ROWS if for_print else SCREEN_UNCOUNTED
    return FlopsPage(
        forward=total_text(fl.forward_total),
        backward=total_text(backward),
        training_step="" if backward is None else flops(fl.forward_total + backward),
        forward_causal=total_text(fl.forward_causal_total),
        backward_causal=total_text(fl.backward_causal_total),
        by_op=tuple(op_row(o, fl.forward_total) for o in shown(fl.by_op, for_print, PRINT_OPS)),
        by_op_note=most_kept_note(fl.by_op, for_print, "ops with the most FLOPs", PRINT_OPS),
        uncounted=tuple((o.op, str(o.calls)) for o in fl.uncounted_ops[:listed]),
        uncounted_more=max(len(fl.uncounted_ops) - listed, 0),
        uncounted_inline=for_print,
        md_totals=md_totals(fl),
        md_attention=md_attention(fl),
        md_modules=tuple(
            (m.name, m.type, flops(m.forward), percent(m.share)) for m in top_modules(fl)
        ),
    )
