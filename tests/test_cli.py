"""The command line: subcommands, help on every option, --quiet, refused values, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES

from reporter.cli import SUBCOMMANDS, build_parser, main, subcommand_parser

NEVER_RUN = "raise SystemExit('the model must not be loaded')\n"
EMBEDDING = """
import torch
from torch import nn

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, ids):
        return self.out(self.emb(ids))

def example_inputs():
    return torch.randint(0, 10, (2, 5))
"""


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", *SUBCOMMANDS):
        assert f"    {name} " in out, out
    assert "Exit codes" in out and "3 report written, but a stage failed" in " ".join(out.split())


def test_every_option_has_help() -> None:
    for name in ("run", *SUBCOMMANDS):
        for action in subcommand_parser(name)._actions:
            assert action.help, (name, action.option_strings or action.dest)


def test_run_is_the_default_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["run", "m.py", "--only", "summary"])
    assert args.command == "run" and args.model_file == "m.py" and args.only == "summary"
    direct = subcommand_parser("run").parse_args(["m.py", "--only", "summary"])
    assert vars(direct) == {k: v for k, v in vars(args).items() if k != "command"}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--timeout", "nan"], ["--timeout nan", "finite number above 0"]),
        (["--timeout", "inf"], ["--timeout inf"]),
        (["--timeout", "-1"], ["--timeout -1"]),
        (["--experiment-seconds", "nan"], ["--experiment-seconds nan", "finite"]),
        (["--timing-seconds", "nan"], ["--timing-seconds nan"]),
        (["--budget", "params=-5"], ["params=-5", "0 or more"]),
        (["--budget", "latency_ms=nan"], ["latency_ms=nan"]),
        (["--seed", "1e23"], ["--seed", "'1e23' is not a whole number"]),
        (["--seed", str(2**70)], ["--seed", "2**64-1"]),
        (["--seed", "-3"], ["--seed", "2**64-1"]),
        (["--input-shape", "100000,100000,100000"], ["--input-shape", "smaller shape"]),
        (["--dtype", "int64"], ["--dtype int64", "--input-shape"]),
    ],
)
def test_refused_before_the_model_runs(
    argv: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "never_run.py"
    model.write_text(NEVER_RUN)
    code = main([str(model), "-o", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "out" / "report.json").exists()


def test_inputs_larger_than_memory_are_one_line(cli, model_file, tmp_path: Path) -> None:
    """Below the hard element limit, the model process compares with free memory."""
    path = model_file("import torch\nmodel = torch.nn.Linear(4, 2)\n")
    result = cli(
        path, "-o", tmp_path / "out", "--input-shape", "4000000,100000", "--only", "summary"
    )
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert len(errors) == 1 and "GiB is free" in errors[0] and "1490.1 GiB" in errors[0]


def test_integer_dtype_is_said_to_apply_to_the_inputs_only(cli, model_file, tmp_path) -> None:
    out = tmp_path / "out"
    result = cli(
        model_file(EMBEDDING), "-o", out, "--dtype", "int64", "--input-shape", "2,5",
        "--only", "summary",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "applies to the random --input-shape inputs only" in " ".join(result.err.split())
    data = json.loads((out / "report.json").read_text())
    assert any("--input-shape inputs only" in n for n in data["notes"])
    assert data["model"]["parameters"]["total"] == 10 * 6 + 6 * 3 + 3


def test_quiet_prints_no_progress_or_summary(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli(SAMPLES / "mlp.py", "-o", out, "--only", "summary", "--quiet")
    assert result.code == 0, result.err
    assert result.err.strip() == "" and result.out.strip() == ""
    assert (out / "report.json").is_file()
    loud = cli(SAMPLES / "mlp.py", "-o", tmp_path / "loud", "--only", "summary")
    assert "wrote" in loud.err and "summary" in loud.err


# ------------------------------------------------------------------ exit codes
def test_budget_on_a_figure_a_crashed_stage_never_measured_fails(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashed timing stage must not pass a latency budget: 1 (before 3), 'unmeasured'."""
    monkeypatch.setenv("PERFREPORT_FAULT", "stage.timing")
    out = tmp_path / "out"
    result = cli(
        SAMPLES / "mlp.py", "-o", out, "--only", "summary,timing", "--budget", "latency_ms=1000"
    )
    assert result.code == 1, result.err
    assert "unmeasured" in result.err
    saved = json.loads((out / "report.json").read_text())
    assert [(b["metric"], b["status"]) for b in saved["budgets"]] == [("latency_ms", "unmeasured")]


def test_a_failed_stage_with_budgets_held_exits_3(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERFREPORT_FAULT", "stage.timing")
    out = tmp_path / "out"
    result = cli(SAMPLES / "mlp.py", "-o", out, "--only", "summary,timing", "--budget", "params=1G")
    assert result.code == 3, result.err
    assert "stage(s) failed: timing" in result.err
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


def test_usage_error_wins_over_everything(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PERFREPORT_FAULT", "stage.timing")
    result = cli(SAMPLES / "mlp.py", "-o", tmp_path / "o", "--budget", "params=-1")
    assert result.code == 2


def test_long_stages_report_progress_inside(tmp_path: Path) -> None:
    """The timing stage says what it measures, the batch sweep each batch, as events the
    parent turns into progress calls."""
    import io

    from helpers import subject_for

    from reporter.options import RunOptions
    from reporter.pipeline import new_run, read_events
    from reporter.worker import Events, run_subject

    subject = subject_for(SAMPLES / "mlp.py", tmp_path)
    options = RunOptions(model_file=subject.source, out_dir=str(tmp_path), stages=["timing"])
    options.stage_options["timing"] = {
        "seconds": 0.05, "batch_sweep": True, "sweep_max_batch": 2, "sweep_seconds": 2.0,
    }  # fmt: skip
    stream = io.BytesIO()
    assert run_subject(subject, options, Events(stream)) == 0
    stream.seek(0)
    calls: list[tuple[str, str]] = []
    read_events(stream, new_run(options), lambda event, stage, _: calls.append((event, stage)))
    progress = [stage for event, stage in calls if event == "progress"]
    assert progress[0].startswith("timing: measuring latency")
    run = new_run(options)
    stream.seek(0)
    read_events(stream, run, lambda *_: None)
    tried = [p.batch for p in run.report.timing.sweep.points]
    assert tried[0] == 1  # how far the sweep gets depends on the machine's speed
    assert [p for p in progress if "batch sweep" in p] == [
        f"timing: batch sweep: batch {b}" for b in tried
    ]
