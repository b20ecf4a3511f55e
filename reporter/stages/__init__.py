"""Stages: each turns the Subject into one section of the Report.

A stage is a module `reporter.stages.<name>` with `run(ctx: StageContext) -> section`.
Modules are imported only when their stage runs, so a quick report imports little.
"""

from __future__ import annotations

import importlib
from typing import Any

from reporter.stages.context import SkipStage, StageContext

__all__ = ["SkipStage", "StageContext", "run_stage"]


def run_stage(name: str, ctx: StageContext) -> Any:
    """Run one stage; on the meta device a stage that needs real tensors is skipped here,
    the one place that rule lives (reporter/report/stages.py says which stages those are)."""
    from reporter.report.stages import EXECUTING_STAGES

    if name in EXECUTING_STAGES and ctx.subject.device.type == "meta":
        raise SkipStage("needs real execution; the model is on the meta device")
    try:
        module = importlib.import_module(f"reporter.stages.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"reporter.stages.{name}":
            raise SkipStage(f"the {name} stage is not available in this version") from None
        raise
    return module.run(ctx)
