"""In-process helpers for tests that check figures without the CLI's child process."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from reporter.loader import load_subject
from reporter.options import RunOptions
from reporter.stages import StageContext, run_stage
from reporter.subject import Subject


def subject_for(path: Path, tmp: Path, **options: Any) -> Subject:
    return load_subject(RunOptions(model_file=str(path), out_dir=str(tmp), **options))


def run_stages(subject: Subject, tmp: Path, *names: str, **options: Any) -> dict[str, Any]:
    opts = RunOptions(model_file=subject.source, out_dir=str(tmp), stages=list(names), **options)
    ctx = StageContext(subject=subject, options=opts)
    return {name: run_stage(name, ctx) for name in names}


def unique_numel(model: torch.nn.Module) -> int:
    """Parameters counted once per distinct memory, independently of perfreport."""
    seen: dict[tuple[int, int, tuple[int, ...]], int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        seen[(p.data_ptr(), p.storage_offset(), tuple(p.shape))] = p.numel()
    return sum(seen.values())


def flop_counter_total(subject: Subject, ordinary_path: bool = True) -> int:
    """FlopCounterMode's own total. With ``ordinary_path`` attention and LSTMs run as
    plain matrix products, which it counts: scaled_dot_product_attention's math backend
    instead of the CPU flash kernel, no fused fast path for nn.MultiheadAttention and
    nn.TransformerEncoderLayer, no oneDNN LSTM layer. It has formulas for none of these."""
    backend = sdpa_kernel(SDPBackend.MATH) if ordinary_path else contextlib.nullcontext()
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(not ordinary_path and fast_path)
    onednn = (
        torch.backends.mkldnn.flags(enabled=False) if ordinary_path else contextlib.nullcontext()
    )
    try:
        with torch.no_grad(), backend, onednn, FlopCounterMode(display=False) as counter:
            subject.call()
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops()


def report_for(path: Path, tmp: Path, *stages: str, **options: Any):  # noqa: ANN201
    """A Report built in-process from the given stages, with the rules applied."""
    from reporter.model_info import describe_model
    from reporter.report import Report, StageStatus
    from reporter.rules import run_rules

    subject = subject_for(path, tmp, **{k: v for k, v in options.items() if k in ("dtype",)})
    sections = run_stages(
        subject, tmp, *stages, **{k: v for k, v in options.items() if k != "dtype"}
    )
    report = Report(model=describe_model(subject))
    for name, section in sections.items():
        setattr(report, name, section)
        report.stages[name] = StageStatus("ok")
    report.findings = run_rules(report)
    return report


def rule_ids(report) -> set[str]:  # noqa: ANN001
    return {f.rule for f in report.findings}


def worker_pids(parent: int) -> list[int]:
    """The model processes (reporter.worker) whose parent is ``parent``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"reporter.worker" in cmdline:
                found.append(int(entry.name))
    return found
