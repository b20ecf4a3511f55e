"""Compute rules on real profiles (CPU) and on reports shaped like GPU runs."""

from __future__ import annotations

from pathlib import Path

from conftest import SAMPLES
from helpers import report_for, rule_ids

from reporter.report import ModelInfo, ParameterTotals, Report
from reporter.report.profile import (
    BatchSweep,
    LatencyStats,
    ProfileSection,
    SweepPoint,
    TimingSection,
)
from reporter.rules import run_rules


def _model(tmp: Path, body: str, inputs: str) -> Path:
    path = tmp / "m.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n"
        + body
        + f"\n\ndef example_inputs():\n    return {inputs}\n"
    )
    return path


def test_hot_module_and_its_absence(tmp_path: Path) -> None:
    body = "def build_model():\n    return nn.Sequential(nn.Linear(64, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.Linear(4096, 2))"
    report = report_for(_model(tmp_path, body, "torch.randn(64, 64)"), tmp_path, "profile")
    finding = next(f for f in report.findings if f.rule == "hot-module")
    assert finding.target == "2"  # the 4096x4096 Linear
    hot = next(m for m in report.profile.modules if m.name == "2")
    assert hot.share > 0.4
    # twelve equal layers take about 8% each: far from the 40% threshold even on a busy machine
    balanced = (
        "def build_model():\n    return nn.Sequential(*[nn.Linear(256, 256) for _ in range(12)])"
    )
    report = report_for(_model(tmp_path, balanced, "torch.randn(64, 256)"), tmp_path, "profile")
    shares = sorted(m.share for m in report.profile.modules if m.depth >= 1)
    assert shares[len(shares) // 2] < 0.2
    assert "hot-module" not in rule_ids(report)


def test_a_body_of_equal_blocks_is_not_a_hot_module(tmp_path: Path) -> None:
    """Like GPT-2: a wrapper takes most of the step, spread over twelve equal blocks."""
    body = (
        "def build_model():\n"
        "    body = nn.Sequential(*[nn.Linear(256, 256) for _ in range(12)])\n"
        "    return nn.Sequential(body, nn.Linear(256, 2))"
    )
    report = report_for(_model(tmp_path, body, "torch.randn(64, 256)"), tmp_path, "profile")
    rows = {m.name: m for m in report.profile.modules}
    assert rows["0"].share > 0.4  # the wrapper passes the threshold ...
    blocks = [m for m in report.profile.modules if m.name.startswith("0.")]
    assert len(blocks) == 12 and max(m.total_us for m in blocks) < rows["0"].total_us / 2
    assert "hot-module" not in rule_ids(report)  # ... but no block nor its own code is hot
    # one heavy block inside the same wrapper is flagged, not the wrapper
    heavy = body.replace("for _ in range(12)]", "for _ in range(3)], nn.Linear(256, 4096)")
    heavy = heavy.replace("nn.Linear(256, 2))", "nn.Linear(4096, 2))")
    report = report_for(_model(tmp_path, heavy, "torch.randn(256, 256)"), tmp_path, "profile")
    finding = next(f for f in report.findings if f.rule == "hot-module")
    assert finding.target == "0.3"


def test_memory_bound_and_launch_bound(tmp_path: Path) -> None:
    body = """
class Pointwise(nn.Module):
    def forward(self, x):
        for _ in range(150):
            x = torch.sin(x) * 1.01 + 0.1
        return x
"""
    report = report_for(_model(tmp_path, body, "torch.randn(8, 8)"), tmp_path, "profile")
    assert {"memory-bound-ops", "launch-bound"} <= rule_ids(report)
    report = report_for(SAMPLES / "mlp.py", tmp_path, "profile")
    assert not {"memory-bound-ops", "launch-bound"} & rule_ids(report)


def test_host_sync(tmp_path: Path) -> None:
    body = """
class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y * 2 if y.sum().item() > 0 else y
"""
    report = report_for(_model(tmp_path, body, "torch.randn(2, 4)"), tmp_path, "profile")
    finding = next(f for f in report.findings if f.rule == "host-sync")
    assert "aten::item" in " ".join(finding.evidence.values())
    assert "host-sync" not in rule_ids(report_for(SAMPLES / "mlp.py", tmp_path, "profile"))


def _gpu_report(tf32: bool, matmul_us: float) -> Report:
    report = Report(model=ModelInfo(class_name="X", source="x.py", device="cuda:0"))
    report.model.parameters = ParameterTotals(
        total=10, trainable=10, frozen=0, bytes=40, by_dtype={"float32": 10}
    )
    report.environment.cuda = {"tf32_matmul": tf32, "float32_matmul_precision": "highest"}
    report.profile = ProfileSection(
        mode="inference",
        device="cuda:0",
        trace_files=[],
        kernel_categories_us={"matmul/conv": matmul_us, "elementwise": 100.0},
    )
    return report


def test_fp32_matmul_on_gpu_both_ways() -> None:
    assert "fp32-matmul-on-gpu" in {f.rule for f in run_rules(_gpu_report(False, 900.0))}
    assert "fp32-matmul-on-gpu" not in {f.rule for f in run_rules(_gpu_report(True, 900.0))}
    assert "fp32-matmul-on-gpu" not in {f.rule for f in run_rules(_gpu_report(False, 10.0))}


def _timing(points: list[tuple[int, float]], batch: int, noisy: bool = False) -> Report:
    report = Report(model=ModelInfo(class_name="X", source="x.py"))
    stats = LatencyStats(median=1.0, p90=1.1, p99=1.2, min=0.9, max=1.3, cv=0.02)
    sweep = BatchSweep(
        points=[SweepPoint(b, b / t, t) for b, t in points],
        knee_batch=max(points, key=lambda p: p[1])[0],
    )
    report.timing = TimingSection(
        latency_ms=stats,
        throughput=1000.0,
        batch_size=batch,
        sweep=sweep,
        noisy=noisy,
        noise_reason="coefficient of variation 30% > 10%" if noisy else "",
    )
    return report


def test_throughput_still_rising_both_ways() -> None:
    rising = _timing([(1, 100.0), (2, 190.0), (4, 350.0), (8, 600.0)], batch=2)
    finding = next(f for f in run_rules(rising) if f.rule == "throughput-still-rising")
    assert finding.evidence["best_batch"] == 8
    flat = _timing([(1, 100.0), (2, 104.0), (4, 106.0)], batch=2)
    assert "throughput-still-rising" not in {f.rule for f in run_rules(flat)}


def test_noisy_timing_both_ways() -> None:
    assert "noisy-timing" in {f.rule for f in run_rules(_timing([(1, 1.0)], 1, noisy=True))}
    assert "noisy-timing" not in {f.rule for f in run_rules(_timing([(1, 1.0)], 1, noisy=False))}


def test_real_timing_sweep_feeds_the_rule(tmp_path: Path) -> None:
    """On a real sweep the rule agrees with the figures it read."""
    report = report_for(
        SAMPLES / "mlp.py",
        tmp_path,
        "timing",
        stage_options={
            "timing": {
                "seconds": 0.3,
                "batch_sweep": True,
                "sweep_max_batch": 64,
                "sweep_seconds": 6,
            }
        },
    )
    sweep = report.timing.sweep
    assert sweep is not None and sweep.points
    here = next((p for p in sweep.points if p.batch == report.timing.batch_size), None)
    best = max(sweep.points, key=lambda p: p.throughput)
    fired = "throughput-still-rising" in rule_ids(report)
    expected = (
        here is not None and best.batch > here.batch and best.throughput >= 1.2 * here.throughput
    )
    assert fired == expected
