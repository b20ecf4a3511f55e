"""`perfreport model.py --nproc-per-node N`: launch the ranks, then build one Report.

The Report of a multi-process run holds the ``trace`` section (the same analysis as
`perfreport trace DIR/trace` over the per-rank files) and the ``distributed`` section. The
static stages (summary, flops, memory, graph) are not run here: they do not depend on the
number of processes, and a plain `perfreport model.py` gives them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from reporter import child
from reporter.distributed.comm import ranks_comm
from reporter.distributed.launch import LaunchResult, LaunchSpec, check_spec, launch
from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.pipeline import ProgressFn
from reporter.report import (
    STAGE_NAMES,
    Environment,
    ModelInfo,
    Report,
    StageStatus,
    from_data,
    to_data,
)
from reporter.report.distributed import DistributedSection, GradCheck, RankRun
from reporter.report.enums import Status

TRACE_GLOB = "*.pt.trace.json*"


def spec_from_args(args: argparse.Namespace, timeout: float) -> LaunchSpec | None:
    """The launch asked for on the command line, or None for an ordinary run."""
    wants = args.nproc_per_node is not None or args.rdzv_endpoint or args.nnodes != 1
    if not wants and not args.wrapper:
        return None
    if args.nproc_per_node is None:
        raise UsageError("--nnodes, --rdzv-endpoint, --ddp and --fsdp need --nproc-per-node N")
    spec = LaunchSpec(
        nproc_per_node=args.nproc_per_node,
        nnodes=args.nnodes,
        rdzv_endpoint=args.rdzv_endpoint,
        timeout=timeout,
    )
    check_spec(spec)
    return spec


def run_distributed(
    options: RunOptions,
    spec: LaunchSpec,
    wrapper: str = "ddp",
    progress: ProgressFn | None = None,
) -> Report:
    """Launch the ranks and gather their traces and facts into one Report."""
    progress = progress or (lambda *_: None)
    if options.device == "meta":
        raise UsageError("--nproc-per-node runs training steps: use --device cpu or cuda")
    trace_dir = Path(options.out_dir) / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    for old in trace_dir.glob(TRACE_GLOB):  # a trace of an earlier run would be read as a rank
        old.unlink()
    progress("start", "distributed", None)
    with tempfile.TemporaryDirectory(prefix="perfreport-dist-") as tmp:
        tmp_path = Path(tmp)
        rank_options = {
            "status_dir": str(tmp_path),
            "wrapper": wrapper,
            # Collectives never give up before the launch timeout: a rank timing out in an
            # all-reduce would look like the culprit, when the rank it waited for is.
            "collective_timeout": spec.timeout + 60.0,
        }
        opts = replace(
            options, stage_options={**options.stage_options, "distributed": rank_options}
        )
        options_path = tmp_path / "options.json"
        options_path.write_text(json.dumps(to_data(opts)))
        result = launch(spec, options_path, tmp_path / "torchrun.log")
        statuses = read_statuses(tmp_path)
    world = spec.nproc_per_node * spec.nnodes
    _raise_usage_error(statuses, result)
    section = build_section(spec, wrapper, result, statuses, world, trace_dir)
    if not section.profile_steps:
        from reporter.profiling.options import profile_steps

        section.profile_steps = list(profile_steps(options.stage_option("profile", "steps")))
    progress(
        "end",
        "distributed",
        StageStatus(
            Status.OK if section.status == "ok" else Status.FAILED,
            error=section.failure or None,
            seconds=round(section.seconds, 3),
        ),
    )
    return build_report(options, section, statuses)


def read_statuses(folder: Path) -> dict[int, dict[str, Any]]:
    """Each rank's facts: its status events (rank_main.StatusFile) folded in order."""
    out = {}
    for path in folder.glob("rank*.jsonl"):
        data: dict[str, Any] = {}
        for event in child.read_event_file(path):
            data.update((k, v) for k, v in event.items() if k != "event")
        if "rank" in data:
            out[int(data["rank"])] = data
    return out


def _raise_usage_error(statuses: dict[int, dict[str, Any]], result: LaunchResult) -> None:
    """A model file that does not load is bad input, as in an ordinary run."""
    for data in statuses.values():
        if data.get("state") == "failed" and data.get("error_type") == "UsageError":
            raise UsageError(str(data.get("message") or data.get("error")))
    if not statuses and not result.timed_out:
        last = result.log_tail.strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"torchrun started no rank ({last[0]})")


def build_section(
    spec: LaunchSpec,
    wrapper: str,
    result: LaunchResult,
    statuses: dict[int, dict[str, Any]],
    world: int,
    trace_dir: Path,
) -> DistributedSection:
    section = DistributedSection(
        world_size=world,
        nproc_per_node=spec.nproc_per_node,
        nnodes=spec.nnodes,
        wrapper=wrapper,
        rendezvous=f"c10d {spec.rdzv_endpoint}" if spec.rdzv_endpoint else "standalone",
        command=" ".join(result.command),
        seconds=result.seconds,
    )
    local = range(world) if spec.nnodes == 1 else sorted(statuses)
    section.ranks = [rank_run(r, statuses.get(r), result.failed.get(r)) for r in local]
    done = [s for s in statuses.values() if s.get("state") == "done"]
    if done:
        first = min(done, key=lambda s: s["rank"])
        section.backend = first.get("backend", "")
        section.profile_steps = list(first.get("profile_steps", []))
        section.grads = GradCheck(
            allreduced=bool(first.get("grads_allreduced")),
            inputs_differ=bool(first.get("inputs_differ")),
            elements=int(first.get("grad_elements", 0)),
            max_rel_diff=first.get("grad_max_rel_diff"),
            local_norms=list(first.get("grad_local_norms", [])),
            reduced_norms=list(first.get("grad_reduced_norms", [])),
        )
    else:
        section.backend = next((s.get("backend", "") for s in statuses.values()), "")
    section.trace_files = [f for r in section.ranks for f in r.trace_files]
    if not section.trace_files:
        # Traces are written when the profiled steps end, before the final barrier.
        section.trace_files = [str(p) for p in sorted(trace_dir.glob(TRACE_GLOB))]
    failed = [r for r in section.ranks if r.state in ("failed", "running", "starting", "missing")]
    if result.timed_out:
        section.status = "timeout"
        section.failed_ranks = [r.rank for r in _behind(section.ranks)]
        section.failure = _timeout_line(spec.timeout, section.ranks)
        for r in section.ranks:
            if r.state in ("running", "starting"):
                r.state = "killed at the timeout"
    elif failed or result.returncode:
        section.status = "failed"
        # torchrun stops the other ranks once one fails; its own summary says which came
        # first. Without it, a rank that was not stopped by the launcher is the one.
        crashed = [r for r in section.ranks if r.rank in result.root_cause]
        crashed = crashed or [r for r in failed if r.state != "terminated"] or failed
        section.failed_ranks = sorted(r.rank for r in crashed)
        section.failure = "; ".join(_failure_line(r) for r in crashed) or (
            f"torchrun {child.describe_exit(result.returncode, model_code=False)}"
        )
    if section.status != "ok":
        section.log_tail = result.log_tail
    if section.trace_files:
        section.comm = ranks_comm([Path(f) for f in section.trace_files])
    return section


def rank_run(rank: int, data: dict[str, Any] | None, exit_code: int | None) -> RankRun:
    if data is None:
        return RankRun(
            rank=rank,
            state="missing",
            exit_code=exit_code,
            error="wrote no status: it did not start or died at once",
        )
    run = RankRun(
        rank=rank,
        state=data.get("state", "unknown"),
        host=data.get("host", ""),
        pid=data.get("pid"),
        phase=data.get("phase", ""),
        step=int(data.get("step", -1)),
        step_seconds=[float(s) for s in data.get("step_seconds", [])],
        error=data.get("error"),
        exit_code=exit_code,
        trace_files=list(data.get("trace_files", [])),
    )
    if run.state in ("running", "starting") and exit_code is not None:
        run.error = f"its process {child.describe_exit(exit_code)}"
    return run


def _failure_line(r: RankRun) -> str:
    where = f" at step {r.step} ({r.phase})" if r.step >= 0 else f" ({r.phase or 'starting'})"
    why = r.error or "stopped without a word (crashed or was killed)"
    return f"rank {r.rank} failed{where}: {why}"


def _behind(ranks: list[RankRun]) -> list[RankRun]:
    """Ranks that got least far: in a hang the others wait for them in a collective."""
    unfinished = [r for r in ranks if r.state != "done"]
    if not unfinished:
        return []
    order = {"init": 0, "load": 1, "grad-check": 2, "forward": 3}
    key = [(r.step, order.get(r.phase, 4)) for r in unfinished]
    least = min(key)
    return [r for r, k in zip(unfinished, key, strict=True) if k == least]


def _timeout_line(timeout: float, ranks: list[RankRun]) -> str:
    where = ", ".join(f"rank {r.rank} at step {r.step} ({r.phase})" for r in ranks)
    behind = ", ".join(str(r.rank) for r in _behind(ranks))
    return f"timed out after {timeout:g} s (--timeout); last seen: {where}" + (
        f"; rank {behind} got least far: the others were waiting for it" if behind else ""
    )


def build_report(
    options: RunOptions, section: DistributedSection, statuses: dict[int, dict[str, Any]]
) -> Report:
    from reporter.trace import analyse_paths

    model = ModelInfo(class_name=Path(options.model_file).stem, source=options.model_file)
    env = Environment(command_line=options.command_line)
    for data in sorted(statuses.values(), key=lambda d: d["rank"]):
        if "model" in data:
            model = from_data(ModelInfo, data["model"])
            env = from_data(Environment, data["environment"])
            break
    report = Report(model=model, environment=env, created=env.timestamp)
    report.options = to_data(options)
    report.distributed = section
    reason = "not run with --nproc-per-node: run without it for the static analysis"
    for name in STAGE_NAMES:
        report.stages[name] = StageStatus(Status.SKIPPED, reason=reason)
    started = time.perf_counter()
    if section.trace_files:
        try:
            report.trace = analyse_paths([Path(f) for f in section.trace_files])
            report.stages["trace"] = StageStatus(Status.OK)
        except UsageError as exc:
            report.stages["trace"] = StageStatus(Status.FAILED, error=str(exc))
    else:
        report.stages["trace"] = StageStatus(
            Status.FAILED, error="no rank wrote a trace (see the multi-process section)"
        )
    report.stages["trace"].seconds = round(time.perf_counter() - started, 3)
    if section.status != "ok":
        verb = "timed out" if section.status == "timeout" else "failed"
        report.notes.append(f"The multi-process run {verb}: {section.failure}")
    return report
