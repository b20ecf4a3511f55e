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


def test_a_stage_runs_right_after_the_one_it_follows() -> None:
    """memory follows profile (its timeline reads the profile's last training step);
    the others keep the listed order."""
    order = run_order(list(STAGE_NAMES))
    assert order.index("memory") == order.index("profile") + 1
    rest = [n for n in STAGE_NAMES if n not in ("timing", "memory")]
    assert [n for n in order if n in rest] == rest
    assert run_order(["memory", "graph"]) == ["memory", "graph"]
    assert run_order(["summary", "memory", "profile", "timing"]) == [
        "timing",
        "summary",
        "profile",
        "memory",
    ]


@pytest.mark.parametrize("name", sorted(EXECUTING_STAGES))
def test_a_stage_that_needs_real_tensors_is_skipped_on_meta_in_one_place(name: str) -> None:
    ctx = SimpleNamespace(subject=SimpleNamespace(device=torch.device("meta")))
    with pytest.raises(SkipStage, match="meta device"):
        run_stage(name, ctx)  # type: ignore[arg-type]
