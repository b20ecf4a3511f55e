"""When a measured figure is far enough from its threshold to be reported as fact.

Times vary from one run to the next; a share that sits on its threshold would make a
finding appear in one run and vanish in the next. A figure therefore has to clear the
threshold by a margin: the step-to-step spread the profile measured ((max - min) / median
of the profiled steps), and at least ``rules.min_margin``. Inside that band a rule reports
at info level, saying the figure is near its threshold; with fewer than ``MIN_STEPS``
profiled steps there is no spread to judge by, and nothing is reported as more than info.
"""

from __future__ import annotations

from dataclasses import dataclass

from reporter.profiling.stats import quantile
from reporter.report.profile import ProfileSection

MIN_STEPS = 2
MARGIN_THRESHOLD = {"rules.min_margin": 0.1}  # relative to the threshold


@dataclass(frozen=True)
class Band:
    margin: float  # relative: a figure must clear threshold * (1 ± margin)
    steps: int  # profiled steps the spread was measured over

    @property
    def enough_steps(self) -> bool:
        return self.steps >= MIN_STEPS

    def verdict(self, value: float, limit: float, above: bool = True) -> str | None:
        """ "clear" when ``value`` is beyond ``limit`` by the margin (above it, or below it
        with ``above=False``) and enough steps were profiled; "near" when it is within the
        margin on either side, or clear on too few steps; None when clearly not beyond."""
        high, low = limit * (1 + self.margin), limit * (1 - self.margin)
        beyond, near = (value > high, value > low) if above else (value < low, value < high)
        if beyond and self.enough_steps:
            return "clear"
        return "near" if near else None

    def describe(self, limit: float, unit: str = "") -> str:
        """The band, for evidence: 'threshold 40%, margin ±12% (spread of 2 steps)'."""
        shown = f"{100 * limit:.0f}%" if not unit else f"{limit:g} {unit}"
        return (
            f"threshold {shown}, margin ±{100 * self.margin:.0f}% of it "
            f"(step-to-step spread over {self.steps} profiled step(s), at least the minimum)"
        )


def band(profile: ProfileSection | None, th: dict[str, float]) -> Band:
    """The margin for figures of this profile: its relative step spread, at least the
    configured minimum."""
    steps = list(profile.step_us) if profile is not None else []
    floor = th.get("rules.min_margin", MARGIN_THRESHOLD["rules.min_margin"])
    if len(steps) < 2:
        return Band(margin=floor, steps=len(steps))
    median = quantile(steps, 0.5)
    spread = (max(steps) - min(steps)) / median if median > 0 else 0.0
    return Band(margin=max(floor, spread), steps=len(steps))


def near_note(verdict: str | None, b: Band) -> str | None:
    """Evidence line for a figure inside the band (None when it cleared it)."""
    if verdict != "near":
        return None
    if not b.enough_steps:
        return f"only {b.steps} profiled step(s): too few to tell a real excess from noise"
    return "near the threshold: within the run-to-run margin, so not reported as fact"


def severity(verdict: str | None) -> str:
    """Warning for a figure that cleared the band, info inside it."""
    return "warning" if verdict == "clear" else "info"


def near_suffix(verdict: str | None) -> str:
    """Appended to a finding's title inside the band."""
    return " (near the threshold)" if verdict == "near" else ""
