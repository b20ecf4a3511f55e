"""Host side: the top CPU ops by self time and the nn.Module paths they ran in."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from reporter.report.trace import ModuleRow, OpRow
from reporter.trace.analyzers.window import Window
from reporter.trace.events import CPU_OP, PYTHON_FUNCTION, HostEvent, TraceEvents

TOP_OPS = 15
MODULE_PREFIX = "nn.Module: "


def cpu_op_tables(ev: TraceEvents, window: Window) -> tuple[list[OpRow], list[ModuleRow], float]:
    """Top CPU ops by self time and the nn.Module paths they ran in."""
    host = ev.host
    order = ev.host_order
    has_modules = any(host[i].name.startswith(MODULE_PREFIX) for i in ev.of(PYTHON_FUNCTION))
    module_path = _module_paths(host, order) if has_modules else None
    lo, hi = window.start, window.end
    ops = [i for i in ev.of(CPU_OP) if lo <= host[i].start <= hi]
    child_time = dict.fromkeys(ops, 0.0)
    cpu_op = CPU_OP
    for i in ops:
        h = host[i]
        p = h.parent
        while p >= 0:  # up to the nearest enclosing op
            above = host[p]
            if above.cat == cpu_op:
                break
            p = above.parent
        if p in child_time:
            child_time[p] += h.end - h.start
    # name -> [count, self, total]; plain lists keep this 100k-op loop cheap
    stats: dict[str, list[float]] = {}
    by_module: dict[str, list[float]] = {}  # module -> [self, ops]
    op_modules: dict[str, Counter[str]] = defaultdict(Counter)
    total_self = 0.0
    for i in ops:
        h = host[i]
        dur = h.end - h.start
        self_us = dur - child_time[i]
        if self_us < 0.0:
            self_us = 0.0
        total_self += self_us
        row = stats.get(h.name)
        if row is None:
            stats[h.name] = [1, self_us, dur]
        else:
            row[0] += 1
            row[1] += self_us
            row[2] += dur
        if module_path is not None and module_path[i]:
            m = module_path[i]
            op_modules[h.name][m] += self_us
            mrow = by_module.setdefault(m, [0.0, 0])
            mrow[0] += self_us
            mrow[1] += 1
    top_names = sorted(stats, key=lambda n: (-stats[n][1], n))[:TOP_OPS]
    top = []
    for name in top_names:
        count, self_us, total = stats[name]
        modules = op_modules.get(name)
        top.append(
            OpRow(
                name=name,
                count=int(count),
                self_us=self_us,
                total_us=total,
                module=modules.most_common(1)[0][0] if modules else "",
            )
        )
    top_modules = [
        ModuleRow(module=m, self_us=v[0], ops=int(v[1]))
        for m, v in sorted(by_module.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP_OPS]
    ]
    return top, top_modules, total_self


def _module_paths(host: Sequence[HostEvent], order: Sequence[int]) -> list[str]:
    """For each host event, the path of nn.Module frames around it ('' without stacks)."""
    out = [""] * len(host)
    for i in order:
        p = host[i].parent
        if p < 0:
            continue
        above = out[p]
        ph = host[p]
        if ph.cat == PYTHON_FUNCTION and ph.name.startswith(MODULE_PREFIX):
            name = ph.name[len(MODULE_PREFIX) :]
            out[i] = f"{above}/{name}" if above else name
        else:
            out[i] = above
    return out
