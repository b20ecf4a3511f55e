"""The stages, registered once: name (also the Report field and the module
``reporter.stages.<name>``), whether it needs real tensors, whether a flag adds it, and
whether it runs first. Everything else (the list of names, the default run, the meta-device
skip, the run order) is derived from this table. Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    name: str
    executes: bool  # needs real tensors: skipped on the meta device
    opt_in: str | None = None  # the flag that adds it; None: in every default run
    runs_first: bool = False  # before every other stage, whatever the selection
    runs_after: str | None = None  # a stage it follows when both run, whatever the listing
    why: str = ""  # the reason for opt_in or runs_first, shown nowhere but here


STAGES: tuple[StageSpec, ...] = (
    StageSpec("summary", executes=False),
    StageSpec("flops", executes=False),
    StageSpec(
        "memory",
        executes=False,
        runs_after="profile",
        why="with --train its memory timeline reads the profile stage's last training step "
        "instead of recording one more (4.4 s of analysis and a step on GPT-2 small)",
    ),
    StageSpec("graph", executes=False),
    StageSpec("profile", executes=True),
    StageSpec(
        "timing",
        executes=True,
        runs_first=True,
        why="before anything else allocates and frees: earlier stages' large frees raise "
        "glibc malloc's mmap/trim thresholds, and the MNIST CNN then timed 2.5 ms instead "
        "of the 3.9 ms a fresh process measures (docs/design.md)",
    ),
    StageSpec("roofline", executes=True),
    StageSpec("trace", executes=True),
    StageSpec("health", executes=True),
    StageSpec(
        "deploy",
        executes=True,
        opt_in="--deploy",
        why="torch.export and dynamo each trace the whole model: seconds to minutes on a "
        "large one, and they answer a deployment question rather than a performance one",
    ),
    StageSpec("experiments", executes=True),
)

BY_NAME = {s.name: s for s in STAGES}
# Every stage in the order the report lists them; also the names of Report fields.
STAGE_NAMES = tuple(s.name for s in STAGES)
OPT_IN_STAGES = {s.name: s.opt_in for s in STAGES if s.opt_in}
DEFAULT_STAGES = tuple(s.name for s in STAGES if not s.opt_in)
EXECUTING_STAGES = frozenset(s.name for s in STAGES if s.executes)
FIRST_STAGES = tuple(s.name for s in STAGES if s.runs_first)


def run_order(names: tuple[str, ...] | list[str]) -> list[str]:
    """The stages in the order they run: those that run first, then the rest as listed,
    each that runs after another moved to just behind it."""
    order = [n for n in FIRST_STAGES if n in names] + [n for n in names if n not in FIRST_STAGES]
    for spec in STAGES:
        if spec.runs_after in order and spec.name in order:
            order.remove(spec.name)
            order.insert(order.index(spec.runs_after) + 1, spec.name)
    return order
