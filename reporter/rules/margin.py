"""When a measured time share clears its threshold for sure, whatever the noise.

Interference (other processes, preemption, frequency changes) only ever adds time. Across
the profiled steps the quickest one is the least disturbed, so the mean step's excess over
it (``mean - min``) bounds the time interference may have added to any figure of the
mean step: a module's mean time ``m`` stands for a true time in ``[m - e, m]``, the step
for ``[T - e, T]``. A share ``m / T`` is reported above its threshold only when even its
lowest reading ``(m - e) / (T - e)`` clears it by ``rules.min_margin`` (relative), and a
mean op time below its threshold only when its highest reading does. Anything in between
is left unsaid: a finding that one run reports and the next one drops is worse than none.
With fewer than ``MIN_STEPS`` profiled steps there is no quickest step to compare with,
and when the excess is more than ``rules.max_step_excess`` of the mean step the profile
itself says it was disturbed (on a throttled machine one step took 78x another): in both
cases time-based rules stay silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from reporter.report.profile import ProfileSection

MIN_STEPS = 2
MARGIN_THRESHOLD = {
    "rules.min_margin": 0.05,  # relative to the threshold
    "rules.max_step_excess": 0.25,  # mean step over the quickest, relative to the mean
}


@dataclass(frozen=True)
class Noise:
    excess_us: float  # mean step minus the quickest step: time interference may have added
    step_us: float  # the mean step
    steps: int  # profiled steps
    margin: float  # relative margin beyond the threshold
    max_excess: float = 0.25  # relative to the mean step: beyond it nothing is judged

    @property
    def enough_steps(self) -> bool:
        """Enough steps, close enough to each other, to judge time shares at all."""
        calm = self.step_us > 0 and self.excess_us <= self.max_excess * self.step_us
        return self.steps >= MIN_STEPS and calm

    def lowest_share(self, part_us: float, whole_us: float) -> float:
        """The smallest ``part / whole`` interference allows: both without the excess."""
        if whole_us <= self.excess_us:
            return 0.0
        return max(0.0, part_us - self.excess_us) / (whole_us - self.excess_us)

    def share_above(self, part_us: float, whole_us: float, limit: float) -> bool:
        """``part / whole`` is above ``limit`` in every reading the noise allows."""
        return self.enough_steps and self.lowest_share(part_us, whole_us) > limit * (
            1 + self.margin
        )

    def below(self, value: float, limit: float) -> bool:
        """A measured time ``value`` (noise only adds to it) is below ``limit`` for sure."""
        return self.enough_steps and value < limit * (1 - self.margin)

    def describe(self, part_us: float, whole_us: float) -> str:
        """Evidence: the share once the noise is taken out."""
        return (
            f"at least {100 * self.lowest_share(part_us, whole_us):.1f}% with the "
            f"{self.excess_us / 1000:.3f} ms the mean step took beyond the quickest of "
            f"{self.steps} profiled steps taken out"
        )


def noise(profile: ProfileSection | None, th: dict[str, float]) -> Noise:
    """The noise bound of this profile's figures (all per mean step)."""
    steps = list(profile.step_us) if profile is not None else []
    margin = th.get("rules.min_margin", MARGIN_THRESHOLD["rules.min_margin"])
    most = th.get("rules.max_step_excess", MARGIN_THRESHOLD["rules.max_step_excess"])
    if not steps:
        return Noise(0.0, 0.0, 0, margin, most)
    mean = sum(steps) / len(steps)
    return Noise(mean - min(steps), mean, len(steps), margin, most)
