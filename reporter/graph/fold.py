"""Fold repeated identical blocks into one `× N` view, and pick a depth from a node budget.

The recording is a tree of calls. The view tree mirrors it, except that a run of sibling
calls with the same structure hash, each feeding the next, becomes one `repeat` view: GPT-2's
12 blocks are one view `× 12` whose children are the inside of the first block. A period
longer than one folds patterns such as Linear, LayerNorm, GELU repeated in a flat Sequential.
Every recorded call is then mapped onto the view that stands for it, with the index of the
repeat it belongs to, so edges between two repeats of a block can be dropped (the `× N` says
it) while edges inside one repeat land on the shared inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # record.py imports torch; rendering a saved report must not
    from reporter.graph.record import Call, Recording


MAX_PERIOD = 8  # longest repeating pattern of siblings looked for


@dataclass
class View:
    id: int
    kind: str  # "call" (one recorded call) or "repeat" (a folded run)
    level: int  # 1 = a child of the model; the --graph-depth that shows it as a node
    call: Call  # the call it shows; for a repeat, the first call of the first repeat
    repeats: int = 1
    period: int = 1  # calls per repeat
    children: list[View] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)  # recorded calls it stands for
    last_name: str = ""  # for a repeat: the name of the last call folded in


@dataclass
class ViewTree:
    top: list[View]  # inputs, the model's children, output
    views: list[View]  # every view, by id
    view_of: dict[int, int]  # recorded call -> view id
    member_of: dict[int, dict[int, int]]  # recorded call -> {repeat view id: repeat index}


def fold(rec: Recording, enabled: bool = True) -> ViewTree:
    calls = rec.calls
    views: list[View] = []
    root = calls[rec.root]
    top_calls = [c.idx for c in calls if c.parent is None and c.idx != rec.root]
    inputs = [i for i in top_calls if calls[i].kind == "input"]
    outputs = [i for i in top_calls if calls[i].kind == "output"]
    siblings = inputs + root.children + outputs
    top = _build(calls, siblings, 1, views, enabled)
    tree = ViewTree(top=top, views=views, view_of={}, member_of={})
    _align(calls, siblings, top, {}, tree)
    return tree


def _build(
    calls: list[Call], sibs: list[int], level: int, views: list[View], enabled: bool
) -> list[View]:
    """Views for a list of sibling calls, folding chained runs of identical patterns."""
    out: list[View] = []
    i = 0
    while i < len(sibs):
        period, reps = _find_run(calls, sibs, i) if enabled else (1, 1)
        if reps >= 2:
            first = calls[sibs[i]]
            view = _new(views, "repeat", level, first)
            view.repeats, view.period = reps, period
            view.last_name = calls[sibs[i + period * reps - 1]].name
            if period == 1:
                if _opens(calls, first):
                    view.children = _build(calls, first.children, level + 1, views, enabled)
            else:
                member = sibs[i : i + period]
                view.children = [_call_view(calls, c, level + 1, views, enabled) for c in member]
            out.append(view)
            i += period * reps
        else:
            out.append(_call_view(calls, sibs[i], level, views, enabled))
            i += 1
    return out


def _call_view(calls: list[Call], idx: int, level: int, views: list[View], enabled: bool) -> View:
    view = _new(views, "call", level, calls[idx])
    if _opens(calls, calls[idx]):
        view.children = _build(calls, calls[idx].children, level + 1, views, enabled)
    return view


def _opens(calls: list[Call], call: Call) -> bool:
    """Only a module that calls other modules is drawn open. One that only calls functions
    (nn.MultiheadAttention: one F.multi_head_attention_forward on its own weights) stays a
    node, so its parameters and cost stay on it rather than on an op drawn inside."""
    return any(calls[c].kind == "module" for c in call.children)


def _new(views: list[View], kind: str, level: int, call: Call) -> View:
    view = View(id=len(views), kind=kind, level=level, call=call)
    views.append(view)
    return view


def _find_run(calls: list[Call], sibs: list[int], i: int) -> tuple[int, int]:
    """(period, repeats) of the longest chained run of identical patterns starting at i."""
    best = (1, 1)
    n = len(sibs)
    for period in range(1, MAX_PERIOD + 1):
        if i + 2 * period > n:
            break
        reps = 1
        while i + (reps + 1) * period <= n and all(
            calls[sibs[i + reps * period + j]].sig == calls[sibs[i + j]].sig for j in range(period)
        ):
            if not _feeds(calls, sibs, i + (reps - 1) * period, i + reps * period, period):
                break
            reps += 1
        if reps >= 2 and period * reps > best[0] * best[1]:
            best = (period, reps)
    return best


def _feeds(calls: list[Call], sibs: list[int], a: int, b: int, period: int) -> bool:
    """Does something in the repeat starting at sibling b consume an output of the one at a?

    Parallel look-alikes (the q, k, v projections of one input) must not fold into `× 3`.
    """
    lo, hi = calls[sibs[a]].idx, calls[sibs[a + period - 1]].end
    start, stop = calls[sibs[b]].idx, calls[sibs[b + period - 1]].end
    return any(lo <= p <= hi for c in calls[start : stop + 1] for p, _ in c.inputs)


def _align(
    calls: list[Call], sibs: list[int], views: list[View], memb: dict[int, int], tree: ViewTree
) -> None:
    """Map recorded siblings onto views built from the first repeat (same structure)."""
    pos = 0
    for view in views:
        if view.kind == "call":
            _assign(calls, sibs[pos], view, memb, tree)
            pos += 1
            continue
        for k in range(view.repeats):
            chunk = sibs[pos : pos + view.period]
            pos += view.period
            inner = {**memb, view.id: k}
            if view.period == 1:
                _assign(calls, chunk[0], view, inner, tree)
            else:
                for c, child in zip(chunk, view.children, strict=True):
                    _assign(calls, c, child, inner, tree)


def _assign(calls: list[Call], idx: int, view: View, memb: dict[int, int], tree: ViewTree) -> None:
    view.raw.append(idx)
    tree.view_of[idx] = view.id
    tree.member_of[idx] = memb
    if view.children:
        _align(calls, calls[idx].children, view.children, memb, tree)
        return
    # drawn closed: everything inside is this view (its edges start and end here)
    stack = list(calls[idx].children)
    while stack:
        inner = stack.pop()
        tree.view_of[inner] = view.id
        tree.member_of[inner] = memb
        stack.extend(calls[inner].children)


def nodes_at_depth(tree: ViewTree) -> dict[int, int]:
    """How many nodes the graph has at each depth (views at that level + shallower leaves)."""
    max_level = max(v.level for v in tree.views)
    at_level = [0] * (max_level + 2)
    leaves_at = [0] * (max_level + 2)
    for v in tree.views:
        at_level[v.level] += 1
        if not v.children:
            leaves_at[v.level] += 1
    counts = {}
    shallower_leaves = 0
    for depth in range(1, max_level + 1):
        counts[depth] = at_level[depth] + shallower_leaves
        shallower_leaves += leaves_at[depth]
    return counts


def choose_depth(tree: ViewTree, budget: int) -> int:
    """The deepest view whose node count fits the budget (depth 1 when none does)."""
    counts = nodes_at_depth(tree)
    fitting = [d for d, n in counts.items() if n <= budget]
    return max(fitting) if fitting else 1
