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
    try:
        module = importlib.import_module(f"reporter.stages.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"reporter.stages.{name}":
            raise SkipStage(f"the {name} stage is not available in this version") from None
        raise
    return module.run(ctx)
