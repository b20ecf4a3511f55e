"""The option schema: each flag defined once, in the parsers of the commands it lists, and
every run option settable in `[tool.perfreport]` with the same effect as its flag."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from reporter import cli
from reporter.cli import main, parse_command, parse_run_options, subcommand_parser
from reporter.errors import UsageError
from reporter.option_schema import COMMANDS, OPTIONS, RUN, Option, default, options_of
from reporter.options import RunOptions

# A value of the right kind for each string option of `run` (files: made by `files`).
TEXT = {
    "model": "Net",
    "dtype": "float16",
    "device": "meta",
    "only": "summary,flops",
    "skip": "flops",
    "profile_steps": "1,1,3",
    "rdzv_endpoint": "localhost:29500",
    "format": "md,pdf",
}
NUMBERS = {"seed": 7, "depth": 2, "nnodes": 2, "lr": 0.01}
LISTS = {"input_shape": ["2,3", "4"], "budget": ["params=10M", "latency_ms=25"]}


def run_options() -> list[Option]:
    """The run options a config file can set."""
    return [o for o in options_of(RUN) if RUN in o.config_commands]


def files(tmp_path: Path) -> dict[str, str]:
    """Existing files and folders for the path options, by key."""
    (tmp_path / "inputs.pt").write_bytes(b"")
    (tmp_path / "logs").mkdir()
    return {
        "out": str(tmp_path / "out"),
        "input": str(tmp_path / "inputs.pt"),
        "checkpoint": str(tmp_path / "inputs.pt"),
        "logdir": str(tmp_path / "logs"),
        "baseline": str(tmp_path / "base.json"),
    }


def sample(option: Option, paths: dict[str, str]) -> Any:
    """A value for `option` other than its default, as a config file holds it."""
    if option.kind is bool:
        return True
    if option.repeat:
        return LISTS[option.key]
    if option.choices:
        return next(c for c in reversed(option.choices) if c != option.default)
    if option.key in paths:
        return paths[option.key]
    if option.kind is str:
        return TEXT[option.key]
    return NUMBERS.get(option.key, 3 if option.kind is int else 2.5)


def as_flags(option: Option, value: Any) -> list[str]:
    if option.switches:
        return [next(f for f, v in option.switches.items() if v == value)]
    if value is True:
        return [option.flags[-1]]
    values = value if isinstance(value, list) else [value]
    return [token for v in values for token in (option.flags[-1], str(v))]


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value)  # numbers, and strings as TOML basic strings


def write_config(folder: Path, settings: dict[str, Any], name: str = "pyproject.toml") -> Path:
    path = folder / name
    lines = "".join(f"{k} = {toml(v)}\n" for k, v in settings.items())
    path.write_text(f"[tool.perfreport]\n{lines}")
    return path


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cli, "QUIET", False)  # `quiet = true` sets it for the process
    path = tmp_path / "model.py"
    path.write_text("import torch\nmodel = torch.nn.Linear(2, 2)\n")
    return path


def parsed(argv: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    options, args = parse_run_options(argv)
    return {**asdict(options), "command_line": None}, vars(args)


# ------------------------------------------------------------------ the parsers
def test_each_flag_is_defined_once() -> None:
    flags = [f for o in OPTIONS for f in o.flags]
    assert len(flags) == len(set(flags))
    keys = [o.key for o in OPTIONS]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_parser_has_the_flags_of_its_commands_and_no_other(command: str) -> None:
    parser = subcommand_parser(command)
    seen = {f for a in parser._actions for f in a.option_strings} - {"-h", "--help"}
    assert seen == {f for o in options_of(command) for f in o.flags}
    for option in OPTIONS:
        assert any(f in seen for f in option.flags) == (command in option.commands), option.key


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    for option in options_of(command):
        for flag in option.flags:
            assert f"{flag} " in out or f"{flag}\n" in out or f"{flag}," in out, flag


def test_run_options_defaults_are_the_schemas(model: Path) -> None:
    options, _ = parse_run_options([str(model)])
    empty = RunOptions(model_file="m.py", out_dir="out")
    for key, field in [("device", "device"), ("depth", "depth"), ("seed", "seed")]:
        assert getattr(options, field) == getattr(empty, field) == default(key)
    assert options.timeout == empty.timeout == default("timeout")
    assert options.auto_meta is empty.auto_meta is True
    assert options.stage_options["timing"]["seconds"] == default("timing_seconds")


# ------------------------------------------------------------------ config files
def test_every_run_option_has_a_config_key_but_config() -> None:
    keys = {o.key for o in run_options()}
    assert keys == {o.key for o in options_of(RUN)} - {"config"}


@pytest.mark.parametrize("option", run_options(), ids=lambda o: o.key)
def test_a_config_key_does_what_its_flag_does(option: Option, model: Path, tmp_path) -> None:
    value = sample(option, files(tmp_path))
    from_flag = parsed([str(model), *as_flags(option, value)])
    assert from_flag != parsed([str(model)]), "the sample must differ from the default"
    write_config(tmp_path, {option.key: value})
    assert parsed([str(model)]) == from_flag


def test_a_config_file_holds_the_keys_at_its_top_level(model: Path, tmp_path: Path) -> None:
    config = tmp_path / "perf.toml"
    config.write_text("timing_seconds = 2.0\ntrain = true\n\n[tool.black]\nline-length = 99\n")
    options, _ = parse_run_options([str(model), "--config", str(config)])
    assert options.train and options.stage_options["timing"]["seconds"] == 2.0
    config.write_text("[tool.perfreport]\ntrain = true\n")
    assert parse_run_options([str(model), "--config", str(config)])[0].train


def test_a_relative_path_is_relative_to_the_config_file(model: Path, tmp_path: Path) -> None:
    (tmp_path / "inputs.pt").write_bytes(b"")
    write_config(tmp_path, {"input": "inputs.pt", "out": "reports/perf"})
    options, _ = parse_run_options([str(model)])
    assert options.input_file == str(tmp_path / "inputs.pt")
    assert options.out_dir == str(tmp_path / "reports" / "perf")


def test_the_command_line_wins(model: Path, tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {"timeout": 60, "input_shape": [[2, 3]], "budget": ["params=1M"], "wrapper": "fsdp",
         "depth": 5},
    )  # fmt: skip
    argv = [str(model), "--timeout", "1800", "--input-shape", "4,5", "--ddp"]
    options, args = parse_run_options(argv)
    assert options.timeout == 1800.0 and options.input_shapes == [[4, 5]]
    assert args.wrapper == "ddp"
    assert options.depth == 5 and args.budget == ["params=1M"]  # not given: the file's


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("train", "yes", "give true or false"),
        ("depth", 2.5, "give a whole number"),
        ("timeout", "60", "give a number"),
        ("device", 1, "give a string"),
        ("optimizer", "lbfgs", "give one of sgd, adam, adamw"),
        ("input_shape", "8,3", "give a list"),
        ("budget", [25], "give a list of strings"),
        ("seed", -1, "2**64-1"),
        ("nnodes", True, "give a whole number"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line(
    key: str, value: Any, words: str, model: Path, tmp_path: Path
) -> None:
    path = write_config(tmp_path, {key: value})
    with pytest.raises(UsageError) as caught:
        parse_run_options([str(model)])
    message = str(caught.value)
    assert message.startswith(f"{path}: {key} = ") and words in message, message
    assert "\n" not in message


def test_an_unknown_key_names_the_file_and_a_close_name(model: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, {"timing_second": 2.0})
    with pytest.raises(UsageError, match="unknown key 'timing_second'") as caught:
        parse_run_options([str(model)])
    assert str(path) in str(caught.value) and "did you mean 'timing_seconds'" in str(caught.value)
    write_config(tmp_path, {"config": "other.toml"})  # names the file; not a setting
    with pytest.raises(UsageError, match="unknown key 'config'"):
        parse_run_options([str(model)])


def test_a_bad_config_exits_2_with_one_line(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, {"timeout": "soon"})
    assert main([str(model), "-o", str(tmp_path / "out")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "timeout = 'soon'" in lines[0]


def test_budgets_and_thresholds_tables_sit_beside_the_keys(model: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.perfreport]\ndepth = 2\n\n[tool.perfreport.budgets]\nparams = "10M"\n\n'
        '[tool.perfreport.thresholds]\n"structure.dominant_layer_share" = 0.9\n'
    )
    options, args = parse_run_options([str(model)])
    settings = cli.settings_from_args(args, tmp_path)
    assert options.depth == 2 and [b.label for b in settings.budgets] == ["params=10M"]
    assert settings.thresholds["structure.dominant_layer_share"] == 0.9


def test_other_commands_read_their_own_keys(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cli, "QUIET", False)
    write_config(
        tmp_path,
        {"format": "md", "paper": "letter", "fail_on": "warning", "threshold": "3%",
         "out": "reports", "train": True},
    )  # fmt: skip
    cwd = lambda _: tmp_path  # noqa: E731
    render = parse_command("render", ["r.json"], cwd)
    assert (render.format, render.paper, render.out) == ("md", "letter", None)
    trace = parse_command("trace", ["t.json"], cwd)
    assert (trace.format, trace.fail_on) == ("md", "warning")
    diff = parse_command("diff", ["a.json", "b.json"], cwd)
    assert (diff.threshold, diff.format, diff.out) == ("3%", "md,html,json", None)
    assert diff.module_threshold == default("module_threshold")
    assert parse_command("diff", ["a.json", "b.json", "--threshold", "9%"], cwd).threshold == "9%"
