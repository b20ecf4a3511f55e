"""Checks of the profile and timing flags, free of torch so the CLI can run them early."""

from __future__ import annotations

import math
from typing import Any

from reporter.errors import UsageError

# wait, warmup, active: the warm-up step (recorded, then dropped) absorbs first-call costs;
# two active steps show whether steps agree. Three forwards in all keep big models quick.
DEFAULT_STEPS = (0, 1, 2)


def profile_steps(value: Any) -> tuple[int, int, int]:
    """(wait, warmup, active) from None, a 'W,W,A' string or a sequence of three ints."""
    if value is None:
        return DEFAULT_STEPS
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    try:
        steps = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        steps = ()
    if len(steps) != 3 or min(steps) < 0 or steps[2] < 1:
        raise UsageError(
            f"--profile-steps {value!r}: give WAIT,WARMUP,ACTIVE as three whole numbers with "
            "ACTIVE at least 1, e.g. 1,1,3"
        )
    return steps  # type: ignore[return-value]


def positive(value: Any, flag: str) -> float:
    """A finite number above 0 (not nan, not inf), or a usage error naming the flag."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not (number > 0 and math.isfinite(number)):
        raise UsageError(f"{flag} {value!r}: give a finite number above 0")
    return number


def check_timing_flags(seconds: Any, max_batch: Any, sweep_seconds: Any) -> None:
    positive(seconds, "--timing-seconds")
    positive(sweep_seconds, "--sweep-seconds")
    if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
        raise UsageError(f"--sweep-max-batch {max_batch!r}: give a largest batch of 1 or more")
