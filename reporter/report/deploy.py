"""Section written by the deploy stage: can the model be exported and compiled?"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckResult:
    status: str  # enums.Status: "ok", "failed" or "skipped"
    seconds: float = 0.0
    error: str = ""  # first line of the failure
    location: str = ""  # file:line in the model's code, when the error names one
    reason: str = ""  # why it was skipped


@dataclass
class GraphBreak:
    reason: str
    location: str = ""


@dataclass
class DeploySection:
    export: CheckResult
    compile: CheckResult
    onnx: CheckResult
    graph_count: int = 0
    graph_breaks: list[GraphBreak] = field(default_factory=list)
    method: str = ""
