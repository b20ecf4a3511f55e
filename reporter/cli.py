"""Command line: arguments, progress display and exit codes. No analysis happens here."""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from reporter import __version__
from reporter.errors import UsageError
from reporter.option_schema import DIFF, RENDER, RUN, TRACE, add_options, default, options_of
from reporter.options import RunOptions
from reporter.report import DEFAULT_STAGES, STAGE_NAMES, Report, StageStatus
from reporter.report.enums import SEVERITY_RANK, BudgetStatus, Severity, Status

# 0 report written; 1 a --fail-on finding or a budget crossed (or unmeasured); 2 bad usage
# or input; 3 report written but a stage failed, hung or was killed. When several apply the
# most severe wins: 2 > 1 > 3 > 0 (a crossed gate is what CI acts on; 3 only says the report
# is incomplete, and any budget on a figure the failed stage owed already gives 1).
EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE, EXIT_STAGE_FAILED = 0, 1, 2, 3
SUBCOMMANDS = ("render", "trace", "diff")

if TYPE_CHECKING:
    from reporter.distributed.launch import LaunchSpec
    from reporter.pipeline import ProgressFn

console = Console(stderr=True, highlight=False)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    set_quiet("--quiet" in argv or "-q" in argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if not argv:
            raise UsageError("give a model file: perfreport MODEL.py (see perfreport --help)")
        if argv[0] in ("-h", "--help", "--version"):
            build_parser().parse_args(argv)  # prints help or the version and exits 0
        if argv[0] in SUBCOMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        # `perfreport MODEL.py` is short for `perfreport run MODEL.py`
        return run_command(argv[1:] if argv[0] == "run" else argv)
    except UsageError as exc:
        if debug:
            traceback.print_exc()
            print(exc.detail, file=sys.stderr, end="")  # the model process's, if any
        console.print(f"[bold red]error:[/] {_plain(str(exc))}", soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print(
            "[red]interrupted:[/] no report written (an earlier report is left as it was)"
        )
        return 130
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)


QUIET = False  # --quiet: no progress, no summary; errors and failures still print


def set_quiet(quiet: bool) -> None:
    global QUIET
    QUIET = quiet


def say(text: str) -> None:
    """Informational output, silenced by --quiet."""
    if not QUIET:
        console.print(text, soft_wrap=True)


def build_parser() -> ArgumentParser:
    """`perfreport` and its subcommands; `perfreport MODEL.py` stands for `perfreport run`."""
    p = ArgumentParser(
        prog="perfreport",
        usage="perfreport [run] MODEL.py [options]\n       perfreport {render,trace,diff} ...",
        description="Analyse, profile and report on a PyTorch model defined in a Python file. "
        "`perfreport MODEL.py` is short for `perfreport run MODEL.py`; "
        "`perfreport COMMAND --help` lists each command's options.",
        epilog="Exit codes: 0 report written; 1 a --fail-on finding or a budget was crossed "
        "(a budget on a figure that was not measured counts as crossed); 2 bad usage or "
        "input; 3 report written, but a stage failed, hung or was killed. "
        "When several apply: 2, then 1, then 3.",
    )
    p.add_argument("--version", action="version", version=f"perfreport {__version__}")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    add_run_arguments(
        sub.add_parser(
            "run",
            prog="perfreport [run]",
            help="analyse a model file and write the report (the default command)",
            description=RUN_DESCRIPTION,
        )
    )
    add_render_arguments(
        sub.add_parser(
            "render",
            prog="perfreport render",
            help="re-render a report.json (HTML, Markdown, PDF) without running the model",
            description="Re-render a report.json without running the model.",
        )
    )
    add_trace_arguments(
        sub.add_parser(
            "trace",
            prog="perfreport trace",
            help="analyse torch.profiler (Kineto) traces, one rank or many",
            description="Analyse torch.profiler traces (one rank or many).",
        )
    )
    add_diff_arguments(
        sub.add_parser(
            "diff",
            prog="perfreport diff",
            help="compare two report.json files: what changed, and whether it is noise",
            description="Compare two report.json files: what changed, and whether it is noise.",
        )
    )
    return p


def subcommand_parser(name: str) -> ArgumentParser:
    """The parser of one subcommand, as `perfreport --help` lists it."""
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _plain(text: str) -> str:
    """Keep rich from reading user text (paths, messages) as markup, and the terminal from
    reading its control characters (ESC, OSC) as commands."""
    from reporter.sanitize import terminal_text

    return terminal_text(text).replace("[", "\\[")


# ---------------------------------------------------------------- perfreport MODEL.py
RUN_DESCRIPTION = (
    "Analyse, profile and report on a PyTorch model defined in a Python file "
    "(`perfreport MODEL.py` is short for `perfreport run MODEL.py`)."
)


def add_run_arguments(p: ArgumentParser) -> None:
    p.add_argument("model_file", help="Python file defining the model (see README: conventions)")
    add_options(p, RUN)


def parse_command(
    command: str, argv: Sequence[str], search_from: Callable[[argparse.Namespace], Path]
) -> argparse.Namespace:
    """`command`'s args: the command line, then `[tool.perfreport]` (or --config FILE) for
    what it leaves out, then the schema's defaults. `search_from(args)`: where the
    nearest pyproject.toml is looked for."""
    from reporter.config import options_from, perfreport_table

    parser = subcommand_parser(command)
    args = parser.parse_args(argv)
    table, path = perfreport_table(args.config, search_from(args))
    preset = options_from(table, path, command)
    # A pre-filled value is what argparse keeps unless the flag is given; a list would
    # be added to instead, so a repeatable option takes the file's list only when the
    # command line gives none.
    lists = {o.target for o in options_of(command) if o.repeat} & preset.keys()
    args = parser.parse_args(
        argv, argparse.Namespace(**{k: v for k, v in preset.items() if k not in lists})
    )
    for dest in lists:
        if not getattr(args, dest):
            setattr(args, dest, preset[dest])
    if args.quiet:  # `quiet = true` in the file; the flag was seen by main()
        set_quiet(True)
    return args


def parse_run_options(
    argv: Sequence[str], *, live: bool = False
) -> tuple[RunOptions, argparse.Namespace]:
    """Checked options; `live`: the model is an nn.Module given to the Python API, and
    argv's model file only names it."""
    args = parse_command(
        RUN, argv, lambda a: Path.cwd() if live else Path(a.model_file).expanduser().parent
    )
    model_file = Path(args.model_file) if live else Path(args.model_file).expanduser().resolve()
    out = Path(args.out) if args.out else Path.cwd() / f"perfreport-{model_file.stem}"
    options = RunOptions(
        model_file=str(model_file),
        out_dir=str(out.expanduser().resolve()),
        model_name=args.model_name,
        input_shapes=[parse_shape(s) for s in args.input_shape],
        dtype=args.dtype,
        input_file=str(Path(args.input_file).resolve()) if args.input_file else None,
        checkpoint=str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
        device=args.device,
        auto_meta=not args.no_auto_meta,
        depth=args.depth,
        stages=select_stages(args.only, args.skip, deploy=args.deploy),
        train=args.train,
        seed=args.seed,
        debug=args.debug,
        timeout=args.timeout,
        threads=args.threads,
        command_line="perfreport " + shlex.join(argv),
    )
    from reporter.profiling.options import check_timing_flags, positive, profile_steps

    check_timing_flags(args.timing_seconds, args.sweep_max_batch, args.sweep_seconds)
    options.stage_options.setdefault("profile", {}).update(
        steps=list(profile_steps(args.profile_steps)), with_stack=args.with_stack
    )
    options.stage_options.setdefault("timing", {}).update(
        seconds=args.timing_seconds,
        batch_sweep=args.batch_sweep,
        sweep_max_batch=args.sweep_max_batch,
        sweep_seconds=args.sweep_seconds,
    )
    at_least_one(args.graph_depth, "--graph-depth")
    options.stage_options.setdefault("graph", {}).update(
        depth=args.graph_depth, format=args.graph_format, colour=args.graph_colour
    )
    preflight(options, live=live)
    at_least_one(args.depth, "--depth")
    at_least_one(args.threads, "--threads")
    positive(args.timeout, "--timeout")
    from reporter.health.options import health_options

    options.stage_options["health"] = health_options(args)
    positive(args.experiment_seconds, "--experiment-seconds")
    options.stage_options["experiments"] = {
        "enabled": args.experiments,
        "seconds": args.experiment_seconds,
        "compile": args.experiment_compile,
    }
    return options, args


def at_least_one(value: int | None, flag: str) -> None:
    """A count flag: 1 or more when given."""
    if value is not None and value < 1:
        raise UsageError(f"{flag} {value}: give 1 or more")


def preflight(options: RunOptions, *, live: bool = False) -> None:
    """What can be checked without torch, before the model process starts."""
    from reporter import preflight as check

    if not live:
        check.check_model_file(Path(options.model_file))
    if options.dtype:
        note = check.check_integer_dtype(options.dtype, options.input_shapes)
        if note:
            say(f"[yellow]note:[/] {_plain(note)}")
    check.check_device_name(options.device)
    check.check_input_file(options.input_file, "--input")
    check.check_input_file(options.checkpoint, "--checkpoint")


# No tensor of more elements can be allocated (and int64 sizes overflow beyond it); memory
# the machine lacks is checked in the model process, where torch knows the dtype's size.
MAX_INPUT_ELEMENTS = 2**48


def parse_shape(text: str) -> list[int]:
    try:
        shape = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        shape = []
    if not shape or any(v <= 0 for v in shape):
        raise UsageError(
            f"--input-shape {text!r}: give positive sizes separated by commas, e.g. 8,3,224,224"
        )
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise UsageError(
            f"--input-shape {text}: {math.prod(shape):.3g} elements is more than any machine "
            "can hold: give a smaller shape"
        )
    return shape


def select_stages(only: str | None, skip: str | None, *, deploy: bool = False) -> list[str]:
    """--only names stages outright; otherwise the default stages, plus any opted into."""
    chosen = list(DEFAULT_STAGES) + (["deploy"] if deploy else [])
    if only:
        chosen = _stage_list(only, "--only")
    if skip:
        dropped = set(_stage_list(skip, "--skip"))
        chosen = [s for s in chosen if s not in dropped]
    return [s for s in STAGE_NAMES if s in chosen]


def _stage_list(text: str, flag: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGE_NAMES]
    if unknown:
        raise UsageError(
            f"{flag}: unknown stage {', '.join(unknown)}: stages are {', '.join(STAGE_NAMES)}"
        )
    return names


def parse_formats(
    text: str, pdf: bool = False, known: Sequence[str] | None = None
) -> tuple[str, ...]:
    """--format's list (plus pdf for --pdf), each once; `known`: the formats the command
    writes (default: the report's)."""
    if known is None:
        from reporter.render import FORMATS

        known = FORMATS
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    if pdf:
        formats.append("pdf")
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise UsageError(f"--format: unknown {', '.join(unknown)}: use {', '.join(known)}")
    return tuple(dict.fromkeys(formats))


def run_command(argv: Sequence[str]) -> int:
    from reporter.outdir import staged
    from reporter.output import prepare_out_dir

    options, args = parse_run_options(argv)
    formats = parse_formats(args.format, args.pdf)
    from reporter.distributed.run import spec_from_args

    launch_spec = spec_from_args(args, options.timeout)  # --nproc-per-node: torchrun
    settings = settings_from_args(args, Path(options.model_file).parent)
    # The allocator experiment runs when the allocator-page-faults rule would fire.
    options.stage_options["timing"]["thresholds"] = {
        k: v for k, v in settings.thresholds.items() if k.startswith("timing.")
    }
    out_dir = prepare_out_dir(Path(options.out_dir))
    say(f"[bold]perfreport[/] {_plain(options.model_file)}")
    with staged(out_dir) as staging:  # -o changes at the end, as a whole, or not at all
        work = staging.options(options)
        with Progress() as progress:
            report = run_report(work, launch_spec, args.wrapper, progress.update)
        report = staging.relocated(report)  # paths as they will be after the swap
        recolour_graph(report, options, staging.path)
        return finish(
            report,
            staging.path,
            formats,
            args.fail_on,
            settings=settings,
            paper=args.paper,
            commit=staging.commit,
        )


def run_report(
    options: RunOptions,
    launch_spec: LaunchSpec | None,
    wrapper: str | None,
    progress: ProgressFn | None = None,
) -> Report:
    """Run the model file: in a child process, or under torchrun when `launch_spec` (from
    --nproc-per-node) is given."""
    if launch_spec is not None:
        from reporter.distributed.run import run_distributed

        return run_distributed(options, launch_spec, wrapper or "ddp", progress)
    from reporter.pipeline import run_model

    return run_model(options, progress)


def recolour_graph(report: Report, options: RunOptions, folder: Path) -> None:
    """Colour the graph files in `folder` by measured time when --graph-colour asks for it."""
    if options.stage_option("graph", "colour", default("graph_colour")) in ("auto", "time"):
        from reporter.graph.recolour import recolour_files

        recolour_files(report, folder)


class Progress:
    """One line per stage as it ends; a spinner names the stage that is running."""

    def __enter__(self) -> Progress:
        self.status = console.status("starting the model process")
        if not QUIET:
            self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if not QUIET:
            self.status.__exit__(*exc)

    def update(self, event: str, stage: str, status: StageStatus | None) -> None:
        """`start` and `end` of a stage; `progress` inside a long one ("timing: warm-up")."""
        if event in ("start", "progress"):
            self.status.update(f"running [bold]{_plain(stage)}[/]")
            return
        assert status is not None
        if status.status == Status.OK:
            took = f" {status.seconds:.2f} s" if status.seconds is not None else ""
            say(f"  [green]✓[/] {stage}{took}")
        elif status.status == Status.FAILED:
            console.print(
                f"  [red]✗ {stage} failed:[/] {_plain(status.error or '')}", soft_wrap=True
            )
        elif status.reason and not status.reason.startswith("not selected"):
            say(f"  [dim]– {stage} skipped: {_plain(status.reason)}[/]")


def finish(
    report: Report,
    out_dir: Path,
    formats: tuple[str, ...],
    fail_on: str | None,
    *,
    settings: Settings | None = None,
    paper: str = "a4",
    commit: Callable[[list[Path]], list[Path]] | None = None,
) -> int:
    """Apply the rules, write the files, print the summary, pick the exit code.

    `commit` (a Staging's) moves the written files into place and returns their paths."""
    from reporter.budgets import crossed

    judge(report, settings or Settings())
    written, missing = write_files(report, out_dir, formats, paper)
    if commit is not None:
        written = commit(written)
    if missing:  # asked for and not written (PDF without Pango): the others are in place
        raise UsageError(missing)
    print_summary(report, written)
    for result in report.budgets:
        if result.status != BudgetStatus.OK:
            console.print(
                f"[red]budget {result.status}:[/] {_plain(result.message)}", soft_wrap=True
            )
    if crossed(report.budgets):
        return EXIT_FAIL_ON
    if fail_on:
        worst = max((SEVERITY_RANK.get(f.severity, 0) for f in report.findings), default=-1)
        if worst >= SEVERITY_RANK[fail_on]:
            console.print(f"[red]failing:[/] a finding at or above --fail-on {fail_on}")
            return EXIT_FAIL_ON
    failed = failed_stages(report)
    if failed:
        console.print(f"[red]incomplete:[/] stage(s) failed: {', '.join(failed)} (exit 3)")
        return EXIT_STAGE_FAILED
    return EXIT_OK


def judge(report: Report, settings: Settings) -> None:
    """Apply the rules (findings) and check the budgets."""
    from reporter.budgets import check_budgets
    from reporter.rules import run_rules

    report.findings = run_rules(report, settings.thresholds)
    report.budgets = check_budgets(report, settings.budgets, settings.baseline)


def failed_stages(report: Report) -> list[str]:
    """Stages that failed, hung or were killed (a multi-process run counts as one)."""
    failed = [name for name, st in report.stages.items() if st.status == Status.FAILED]
    if report.distributed is not None and report.distributed.status != "ok":
        failed.append("distributed")
    return failed


def write_files(
    report: Report, out_dir: Path, formats: tuple[str, ...], paper: str
) -> tuple[list[Path], str]:
    """Write every format that can be; (paths written, why one asked for could not be).
    A format asked for and not written (PDF without Pango) is bad usage, said once the
    others are in place: one line and exit 2."""
    from reporter.render import write_report

    missing: list[str] = []
    written = write_report(report, out_dir, formats, paper=paper, warn=missing.append)
    return written, missing[0] if missing else ""


def print_summary(report: Report, written: list[Path]) -> None:
    from rich.table import Table

    if QUIET:
        return
    from reporter.render.view import headline

    table = Table(show_header=False, box=None, pad_edge=False)
    for label, value, how in headline(report):
        table.add_row(label, f"[bold]{value}[/]", f"[dim]{_plain(how)}[/]")
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITY_RANK}
    table.add_row("Findings", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none", "")
    console.print(table)
    for f in report.findings[:5]:
        console.print(f"  [{_colour(f.severity)}]{f.severity}[/] {_plain(f.title)}", soft_wrap=True)
    for path in written:
        console.print(f"wrote {_plain(str(path))}")


def _colour(severity: str) -> str:
    return {Severity.CRITICAL: "red", Severity.WARNING: "yellow"}.get(severity, "blue")


def settings_from_args(args: argparse.Namespace, search_from: Path) -> Settings:
    """Budgets, baseline and thresholds, read before the model runs so mistakes cost nothing."""
    from reporter.budgets import collect_budgets, require_baseline
    from reporter.report import load_report

    budgets = collect_budgets(args.budget, args.config, search_from)
    baseline = load_report(args.baseline) if args.baseline else None
    require_baseline(budgets, baseline)
    return Settings(budgets, baseline, thresholds_from_args(args.config, search_from))


def thresholds_from_args(config: str | None, search_from: Path) -> dict[str, float]:
    from reporter.config import perfreport_table, thresholds_from
    from reporter.rules import default_thresholds

    table, path = perfreport_table(config, search_from)
    return thresholds_from(table, path, default_thresholds())


@dataclass
class Settings:
    budgets: list[Any] = field(default_factory=list)
    baseline: Report | None = None
    thresholds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- perfreport render
def add_render_arguments(p: ArgumentParser) -> None:
    p.add_argument("report_json", metavar="REPORT.json", help="a report.json perfreport wrote")
    add_options(p, RENDER)


def render_command(argv: Sequence[str]) -> int:
    from reporter.outdir import staged
    from reporter.output import prepare_out_dir
    from reporter.report import load_report

    args = parse_command(RENDER, argv, lambda _: Path.cwd())
    report = load_report(args.report_json)
    out_dir = prepare_out_dir(
        Path(args.out) if args.out else Path(args.report_json).resolve().parent
    )
    formats = parse_formats(args.format, args.pdf)
    with staged(out_dir, owned=[f"report.{f}" for f in formats]) as staging:
        written, missing = write_files(report, staging.path, formats, args.paper)
        for path in staging.commit(written):
            say(f"wrote {_plain(str(path))}")
    if missing:
        raise UsageError(missing)
    return EXIT_OK


# ---------------------------------------------------------------- perfreport trace
def add_trace_arguments(p: ArgumentParser) -> None:
    p.add_argument("path", help="a trace file (.json or .json.gz) or a folder of them")
    add_options(p, TRACE)


def trace_command(argv: Sequence[str]) -> int:
    # Not reporter.environment's now_iso: that module imports torch (1.6 s, 200 MB), and
    # traces are analysed without it.
    from datetime import datetime

    from reporter.outdir import REPORT_FILES, staged
    from reporter.output import prepare_out_dir
    from reporter.report import ModelInfo
    from reporter.trace import analyse_paths, find_trace_files

    args = parse_command(TRACE, argv, lambda _: Path.cwd())
    source = Path(args.path)
    files = find_trace_files(source)
    settings = Settings(thresholds=thresholds_from_args(args.config, Path.cwd()))
    formats = parse_formats(args.format, args.pdf)
    out_dir = prepare_out_dir(
        Path(args.out) if args.out else Path.cwd() / f"perfreport-trace-{source.stem}"
    )
    with console.status(f"analysing {len(files)} trace file(s)") if not QUIET else nullcontext():
        section = analyse_paths(files)
    report = Report(
        model=ModelInfo(class_name=f"Trace: {source.name}", source=str(source), device="trace"),
        kind="trace",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        stages={"trace": StageStatus(Status.OK)},
        trace=section,
    )
    report.environment.perfreport_version = __version__
    report.environment.command_line = "perfreport trace " + shlex.join(argv)
    with staged(out_dir, owned=REPORT_FILES) as staging:
        return finish(
            report, staging.path, formats, args.fail_on, settings=settings, commit=staging.commit
        )


# ---------------------------------------------------------------- perfreport diff
def add_diff_arguments(p: ArgumentParser) -> None:
    p.add_argument("base", metavar="BASE.json", help="the report to compare against")
    p.add_argument("head", metavar="HEAD.json", help="the report under review")
    add_options(p, DIFF)


def diff_command(argv: Sequence[str]) -> int:
    from reporter.budgets import check_budgets, collect_budgets, crossed
    from reporter.diff import diff_reports, parse_fraction
    from reporter.output import prepare_out_dir, write_atomic
    from reporter.render.diff_render import DIFF_FORMATS, DIFF_RENDERERS, render_diff_text
    from reporter.report import load_report

    args = parse_command(DIFF, argv, lambda _: Path.cwd())
    formats = parse_formats(args.format, known=DIFF_FORMATS)
    threshold = parse_fraction(args.threshold, "--threshold", 0.0, 10.0)
    confidence = parse_fraction(args.confidence, "--confidence", 0.5, 1.0)
    budgets = collect_budgets(args.budget, args.config, Path.cwd())
    base, head = load_report(args.base), load_report(args.head)
    diff = diff_reports(
        base,
        head,
        module_threshold=args.module_threshold,
        confidence=confidence,
        threshold=threshold,
    )
    results = check_budgets(head, budgets, base)
    from reporter.sanitize import terminal_text

    print(terminal_text(render_diff_text(diff, results)), end="")
    if args.out:
        out_dir = prepare_out_dir(Path(args.out))
        for fmt in formats:
            path = out_dir / f"diff.{fmt}"
            write_atomic(path, DIFF_RENDERERS[fmt](diff, results))
            say(f"wrote {_plain(str(path))}")
    code = EXIT_OK
    for result in crossed(results):
        console.print(f"[red]budget crossed:[/] {_plain(result.message)}", soft_wrap=True)
        code = EXIT_FAIL_ON
    if args.fail_on_regression and diff.worse:
        names = ", ".join(m.label for m in diff.worse)
        console.print(f"[red]failing:[/] worse beyond the threshold: {names}")
        code = EXIT_FAIL_ON
    return code


COMMANDS = {"render": render_command, "trace": trace_command, "diff": diff_command}
