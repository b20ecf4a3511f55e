"""The profile section's bar charts, as SVG strings its template inserts."""

from __future__ import annotations

from dataclasses import dataclass

from reporter.render.charts import hbar_chart
from reporter.report.profile import ProfileSection

MODULE_BARS = 12  # modules charted, most self time first (the table lists them all)


@dataclass
class ProfileView:
    categories_svg: str  # host self time by kind of op
    kernel_categories_svg: str  # GPU kernel time by kind ("" without kernels)
    modules_svg: str  # self time of the busiest modules below the model ("" in print)


def profile_view(p: ProfileSection, *, for_print: bool = False) -> ProfileView:
    # sorted() is stable, like Jinja's sort: modules with equal time keep the trace's order
    modules = sorted((m for m in p.modules if m.depth != 0), key=lambda m: m.self_us, reverse=True)
    return ProfileView(
        categories_svg=hbar_chart(list(p.categories_us.items()), "us"),
        kernel_categories_svg=hbar_chart(list(p.kernel_categories_us.items()), "us")
        if p.kernel_categories_us
        else "",
        # print: the module table's Self column carries the same figures
        modules_svg=""
        if for_print or not modules
        else hbar_chart([(m.name, m.self_us) for m in modules[:MODULE_BARS]], "us"),
    )
