"""TensorBoard event files written here with SummaryWriter, read back, and the curve rules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

import reporter.rules.health  # noqa: F401  (registers the rules)
from reporter.errors import UsageError
from reporter.health.logs import MAX_POINTS, read_logs
from reporter.report import ModelInfo, Report
from reporter.report.health import HealthSection
from reporter.rules.registry import run_rules


def write_runs(root: Path, runs: dict[str, dict[str, list[float]]]) -> Path:
    for run, tags in runs.items():
        writer = SummaryWriter(str(root / run))
        for tag, values in tags.items():
            for step, value in enumerate(values):
                writer.add_scalar(tag, value, step)
        writer.close()
    return root


def rules_on(root: Path) -> dict[str, list]:
    report = Report(model=ModelInfo("m", "m.py"), health=HealthSection(logs=read_logs(root)))
    out: dict[str, list] = {}
    for f in run_rules(report):
        assert f.rule != "rule-error", f.title
        out.setdefault(f.rule, []).append(f)
    return out


def decay(n: int, start: float = 2.0, tau: float = 15.0) -> list[float]:
    return [start * math.exp(-s / tau) + 0.05 for s in range(n)]


def test_curves_read_back_as_written(tmp_path: Path) -> None:
    loss, lr = decay(30), [1e-3 * 0.9**s for s in range(30)]
    write_runs(tmp_path, {"train": {"loss": loss, "lr": lr}, "val": {"loss": decay(30, 2.5)}})
    logs = read_logs(tmp_path)
    got = {(c.run, c.tag): c for c in logs.curves}
    assert set(got) == {("train", "loss"), ("train", "lr"), ("val", "loss")}
    assert logs.event_files == 2
    assert got["train", "loss"].steps == list(range(30))
    assert got["train", "loss"].values == pytest.approx(loss, rel=1e-6)  # stored as float32
    assert got["train", "lr"].values == pytest.approx(lr, rel=1e-6)


def test_long_curves_are_thinned_but_keep_every_nan(tmp_path: Path) -> None:
    values = decay(MAX_POINTS * 3)
    values[1234] = float("nan")
    write_runs(tmp_path, {"run": {"loss": values}})
    (c,) = read_logs(tmp_path).curves
    assert c.points == MAX_POINTS * 3
    assert len(c.steps) <= MAX_POINTS + 2 and c.steps[-1] == MAX_POINTS * 3 - 1
    assert c.nonfinite_steps == [1234]
    assert math.isnan(c.values[c.steps.index(1234)])


def test_overfitting_fires_when_validation_rises_and_training_falls(tmp_path: Path) -> None:
    val = [v + 0.004 * max(0, s - 20) ** 1.5 for s, v in enumerate(decay(50))]
    write_runs(tmp_path / "a", {"train": {"loss": decay(50)}, "val": {"loss": val}})
    write_runs(tmp_path / "b", {"train": {"loss": decay(50)}, "val": {"loss": decay(50, 2.4)}})
    hit = rules_on(tmp_path / "a")["overfitting"][0]
    best = min(range(50), key=lambda s: val[s])
    assert hit.evidence["best_validation_step"] == best
    assert hit.evidence["last_validation_loss"] == f"{val[-1]:.4g}"
    assert "overfitting" not in rules_on(tmp_path / "b")


def test_overfitting_pairs_tags_in_one_run(tmp_path: Path) -> None:
    val = [v + 0.004 * max(0, s - 20) ** 1.5 for s, v in enumerate(decay(50))]
    write_runs(tmp_path, {".": {"train/loss": decay(50), "val/loss": val}})
    assert rules_on(tmp_path)["overfitting"][0].evidence["validation"] == "val/loss"


def test_not_converging_fires_on_a_flat_loss(tmp_path: Path) -> None:
    flat = [1.0 + 0.02 * math.sin(s) for s in range(40)]
    write_runs(tmp_path / "flat", {"train": {"loss": flat}})
    write_runs(tmp_path / "ok", {"train": {"loss": decay(40)}})
    hit = rules_on(tmp_path / "flat")["not-converging"][0]
    first, last = sum(flat[:4]) / 4, sum(flat[-4:]) / 4
    assert hit.evidence["first_10pct_mean"] == f"{first:.4g}"
    assert hit.evidence["last_10pct_mean"] == f"{last:.4g}"
    assert "not-converging" not in rules_on(tmp_path / "ok")


def test_spikes_fire_on_a_jump_over_the_recent_median(tmp_path: Path) -> None:
    spiky = decay(60)
    spiky[35] = 10 * spiky[34]
    write_runs(tmp_path / "spiky", {"train": {"loss": spiky}})
    write_runs(tmp_path / "smooth", {"train": {"loss": decay(60)}})
    hit = rules_on(tmp_path / "spiky")["loss-spikes"][0]
    assert hit.evidence["spike_steps"] == "35"
    assert "loss-spikes" not in rules_on(tmp_path / "smooth")


def test_nan_in_a_curve_is_critical(tmp_path: Path) -> None:
    broken = decay(20)
    broken[12:] = [float("nan")] * 8
    write_runs(tmp_path / "nan", {"train": {"loss": broken}})
    write_runs(tmp_path / "fine", {"train": {"loss": decay(20)}})
    hit = rules_on(tmp_path / "nan")["curve-nan"][0]
    assert hit.severity == "critical" and hit.evidence["first_step"] == 12
    assert "curve-nan" not in rules_on(tmp_path / "fine")


def test_a_folder_without_event_files_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no TensorBoard event files"):
        read_logs(tmp_path)
    with pytest.raises(UsageError, match="no such folder"):
        read_logs(tmp_path / "missing")
