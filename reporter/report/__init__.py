"""The Report: one dataclass tree that every stage writes into and every renderer reads.

Nothing here imports torch, so rendering, diffing and trace analysis work without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporter.errors import UsageError
from reporter.report.base import from_data, to_data
from reporter.report.deploy import DeploySection
from reporter.report.distributed import DistributedSection
from reporter.report.enums import Status
from reporter.report.experiments import ExperimentsSection
from reporter.report.graph import GraphSection
from reporter.report.health import HealthSection
from reporter.report.profile import ProfileSection, TimingSection
from reporter.report.roofline import RooflineSection
from reporter.report.stages import DEFAULT_STAGES, OPT_IN_STAGES, STAGE_NAMES
from reporter.report.static import (
    FitRow,
    FlopsSection,
    LayerRow,
    MemorySection,
    ModuleFlops,
    OpCount,
    SummarySection,
    TrainingMemory,
)
from reporter.report.trace import TraceSection

SCHEMA_VERSION = 1

__all__ = [
    "DEFAULT_STAGES",
    "OPT_IN_STAGES",
    "SCHEMA_VERSION",
    "STAGE_NAMES",
    "BudgetResult",
    "DeploySection",
    "Environment",
    "Finding",
    "FitRow",
    "FlopsSection",
    "GraphSection",
    "HealthSection",
    "LayerRow",
    "MemorySection",
    "ModelInfo",
    "ModuleFlops",
    "OpCount",
    "ParameterTotals",
    "ProfileSection",
    "RooflineSection",
    "Report",
    "SharedTensor",
    "StageStatus",
    "SummarySection",
    "TensorSpec",
    "TimingSection",
    "TraceSection",
    "TrainingMemory",
    "from_data",
    "load_report",
    "report_from_json",
    "report_to_json",
    "to_data",
]


@dataclass
class StageStatus:
    status: str  # enums.Status: "ok", "failed" or "skipped"
    error: str | None = None  # one line, for "failed"
    reason: str | None = None  # for "skipped"
    seconds: float | None = None
    detail: str | None = None  # traceback of a failure, for --debug and bug reports
    facts: dict[str, Any] = field(default_factory=dict)  # figures at a failure (e.g. CUDA OOM)


@dataclass
class TensorSpec:
    name: str
    shape: list[int]
    dtype: str
    device: str


@dataclass
class SharedTensor:
    """One tensor reached under several parameter names (tied weights)."""

    names: list[str]
    numel: int


@dataclass
class ParameterTotals:
    total: int  # unique elements: a tensor shared by several modules counts once
    trainable: int
    frozen: int
    bytes: int
    buffers: int = 0
    buffer_bytes: int = 0
    by_dtype: dict[str, int] = field(default_factory=dict)  # dtype -> elements
    shared: list[SharedTensor] = field(default_factory=list)
    duplicates: list[SharedTensor] = field(default_factory=list)  # equal values, separate memory
    counted_per_name: int = 0  # every name counted, as torchinfo does


@dataclass
class ModelInfo:
    class_name: str
    source: str
    name: str = ""
    found_by: str = ""  # how the loader found the model, e.g. "build_model()"
    device: str = "cpu"
    modules: int = 0
    inputs: list[TensorSpec] = field(default_factory=list)
    parameters: ParameterTotals | None = None
    checkpoint: str | None = None


@dataclass
class Environment:
    perfreport_version: str = ""
    torch_version: str = ""
    python_version: str = ""
    platform: str = ""
    device_name: str = ""
    cpu_count: int = 0
    torch_threads: int = 0
    # --threads N as given: torch.set_num_threads(N) in the model process, as
    # torch.utils.benchmark.Timer's num_threads; None: torch's default
    num_threads: int | None = None
    cuda: dict[str, Any] = field(default_factory=dict)
    device_memory_bytes: int = 0  # of the device the model ran on (RAM for the CPU)
    command_line: str = ""
    seed: int | None = None
    timestamp: str = ""


@dataclass
class Finding:
    rule: str  # stable id, e.g. "dominant-layer"
    severity: str  # enums.Severity: "info", "warning" or "critical"
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""
    snippet: str = ""
    target: str | None = None  # module, op or kernel the finding is about
    docs: str = ""  # anchor in docs/rules.md
    # The rule's documentation (what it checks, why, thresholds), carried in the report so
    # that an installed report explains itself without docs/rules.md beside it.
    rule_doc: str = ""


@dataclass
class BudgetResult:
    """One budget checked against this run (reporter/budgets.py)."""

    metric: str  # e.g. "latency_ms", "params"
    spec: str  # as the user wrote it, e.g. "+5%" or "10M"
    status: str  # enums.BudgetStatus: "ok", "crossed" or "unmeasured"
    message: str
    value: float | None = None  # this run's figure
    limit: float | None = None  # the figure it was held to
    baseline: float | None = None  # for relative budgets


@dataclass
class Report:
    model: ModelInfo
    schema_version: int = SCHEMA_VERSION
    created: str = ""
    kind: str = "model"  # "model" for a model run, "trace" for `perfreport trace`
    environment: Environment = field(default_factory=Environment)
    options: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, StageStatus] = field(default_factory=dict)
    summary: SummarySection | None = None
    flops: FlopsSection | None = None
    memory: MemorySection | None = None
    graph: GraphSection | None = None
    profile: ProfileSection | None = None
    timing: TimingSection | None = None
    roofline: RooflineSection | None = None
    trace: TraceSection | None = None
    health: HealthSection | None = None
    deploy: DeploySection | None = None
    experiments: ExperimentsSection | None = None
    distributed: DistributedSection | None = None  # --nproc-per-node runs only
    findings: list[Finding] = field(default_factory=list)
    budgets: list[BudgetResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def stage_ok(self, name: str) -> bool:
        status = self.stages.get(name)
        return status is not None and status.status == Status.OK

    def save(
        self, folder: str | os.PathLike[str], formats: Sequence[str] = ("html", "json", "md")
    ) -> list[Path]:
        """Write report.<format> for each of `formats` into `folder`; return the paths."""
        from reporter.notebook import save

        return save(self, folder, formats)

    def _repr_html_(self) -> str:
        """Jupyter: the HTML report in an iframe, so its CSS and the notebook's stay apart."""
        from reporter.notebook import repr_html

        return repr_html(self)


def report_to_json(report: Report) -> str:
    return json.dumps(to_data(report), indent=2, sort_keys=False) + "\n"


def report_from_json(text: str, origin: str = "report") -> Report:
    """Parse report JSON, every field's type checked (report/validate.py); a newer schema,
    a non-report file or a wrong type is a usage error."""
    from reporter.report.validate import decode_report

    return decode_report(text, origin, SCHEMA_VERSION)


def load_report(path: str | Path) -> Report:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory: give the report.json inside it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from None
    return report_from_json(text, origin=str(path))
