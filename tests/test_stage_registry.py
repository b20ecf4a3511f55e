"""The stage registry: one table from which the names, defaults and meta rule follow."""

from __future__ import annotations

import dataclasses
import importlib
from types import SimpleNamespace

import pytest
import torch

from reporter.report import Report
from reporter.report.stages import (
    DEFAULT_STAGES,
    EXECUTING_STAGES,
    OPT_IN_STAGES,
    STAGE_NAMES,
    STAGES,
    run_order,
)
from reporter.stages import SkipStage, run_stage


def test_every_stage_has_a_report_field_and_a_module_with_run() -> None:
    fields = {f.name for f in dataclasses.fields(Report)}
    for spec in STAGES:
        assert spec.name in fields, spec.name
        assert callable(importlib.import_module(f"reporter.stages.{spec.name}").run)


def test_the_derived_sets_follow_the_table() -> None:
    assert set(DEFAULT_STAGES) | set(OPT_IN_STAGES) == set(STAGE_NAMES)
    assert not set(DEFAULT_STAGES) & set(OPT_IN_STAGES)
    assert OPT_IN_STAGES == {"deploy": "--deploy"}
    assert run_order(list(STAGE_NAMES))[0] == "timing"
    assert sorted(run_order(list(STAGE_NAMES))) == sorted(STAGE_NAMES)


@pytest.mark.parametrize("name", sorted(EXECUTING_STAGES))
def test_a_stage_that_needs_real_tensors_is_skipped_on_meta_in_one_place(name: str) -> None:
    ctx = SimpleNamespace(subject=SimpleNamespace(device=torch.device("meta")))
    with pytest.raises(SkipStage, match="meta device"):
        run_stage(name, ctx)  # type: ignore[arg-type]
