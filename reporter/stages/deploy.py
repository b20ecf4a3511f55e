"""Deploy stage: torch.export, torch.compile graph breaks and ONNX export on the sample input.

These are what block a deployment, so each failure becomes a finding with its reason and
the line of model code it points at.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reporter.report.deploy import CheckResult, DeploySection, GraphBreak
from reporter.report.enums import Status
from reporter.stages.context import StageContext

METHOD = (
    "torch.export.export(model, inputs, strict=False); torch._dynamo.explain on the sample "
    "input for graph breaks (each with its reason and the user code line); ONNX export with "
    "torch.onnx.export when the onnx package is installed. All on the loaded model in eval mode."
)


def run(ctx: StageContext) -> DeploySection:
    subject = ctx.subject
    export = _timed(
        lambda: torch.export.export(
            subject.model, subject.args, kwargs=subject.kwargs, strict=False
        ),
        subject.source,
    )
    explained, compile_check = _explain(subject)
    breaks = (
        [GraphBreak(_first_line(r.reason), _frame(r.user_stack)) for r in explained.break_reasons]
        if explained
        else []
    )
    return DeploySection(
        export=export,
        compile=compile_check,
        onnx=_onnx(subject),
        graph_count=explained.graph_count if explained else 0,
        graph_breaks=_dedupe(breaks),
        method=METHOD,
    )


def _timed(action: Callable[[], Any], source: str = "") -> CheckResult:
    start = time.perf_counter()
    try:
        with _quiet():
            action()
    except Exception as exc:
        return CheckResult(
            Status.FAILED,
            round(time.perf_counter() - start, 3),
            _first_line(f"{type(exc).__name__}: {exc}"),
            _location(exc, source),
        )
    return CheckResult(Status.OK, round(time.perf_counter() - start, 3))


def _explain(subject: Any) -> tuple[Any, CheckResult]:
    import torch._dynamo as dynamo

    start = time.perf_counter()
    dynamo.reset()
    try:
        with _quiet():
            explained = dynamo.explain(subject.model)(*subject.args, **subject.kwargs)
    except Exception as exc:
        return None, CheckResult(
            Status.FAILED,
            round(time.perf_counter() - start, 3),
            _first_line(f"{type(exc).__name__}: {exc}"),
            _location(exc),
        )
    finally:
        dynamo.reset()
    return explained, CheckResult(Status.OK, round(time.perf_counter() - start, 3))


def _onnx(subject: Any) -> CheckResult:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return CheckResult(
            Status.SKIPPED, reason="the onnx package is not installed (pip install onnx onnxscript)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        return _timed(
            lambda: torch.onnx.export(
                subject.model, subject.args, str(path), kwargs=subject.kwargs or None
            )
        )


@contextlib.contextmanager
def _quiet() -> Any:
    """Dynamo and export log at length to stderr; keep the model process's log readable."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _location(exc: BaseException, source: str = "") -> str:
    """The user code line an export error blames ('Caused by: (file.py:7 in forward)')."""
    match = re.search(r"Caused by: \((.+?):(\d+) in (\w+)\)", str(exc))
    if match:
        file, line, func = match.groups()
        if source and source.endswith(file):  # torch shortens the path it prints
            file = source
        return f"{file}:{line} in {func}"
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" not in f.filename
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""


def _frame(stack: Any) -> str:
    frames = list(stack or [])
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename}:{f.lineno} in {f.name}"


def _dedupe(breaks: list[GraphBreak]) -> list[GraphBreak]:
    seen: dict[tuple[str, str], GraphBreak] = {}
    for b in breaks:
        seen.setdefault((b.reason, b.location), b)
    return list(seen.values())
