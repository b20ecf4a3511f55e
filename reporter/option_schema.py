"""Every command-line option, defined once: its flags, type, default, help, --help group,
the commands whose parsers have it, and its `[tool.perfreport]` key.

cli.py builds each command's parser from OPTIONS (`add_options`), config.py checks the
file's values against them (`from_config`), and RunOptions and the stages take their
defaults from here (`default`). Free of argparse and rich at import time: the model
process imports RunOptions, and with it this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporter.errors import UsageError
from reporter.profiling.options import DEFAULT_STEPS
from reporter.report.enums import SEVERITIES
from reporter.report.stages import STAGE_NAMES

RUN, RENDER, TRACE, DIFF = "run", "render", "trace", "diff"
COMMANDS = (RUN, RENDER, TRACE, DIFF)
MAX_SEED = 2**64 - 1  # torch.manual_seed takes an unsigned 64-bit seed


def seed_value(text: str) -> int:
    """--seed: a whole number torch.manual_seed accepts ('1e23' and 2**70 are refused)."""
    try:
        seed = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{text}: give a whole number from 0 to 2**64-1")
    return seed


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]  # the long flag last; its snake_case name is the config key
    help: str  # %(default)s is the default of the command whose --help shows it
    commands: tuple[str, ...]  # the commands whose parsers have the flag
    group: str  # the heading it is listed under in --help
    kind: type = str  # bool: a switch; int, float, str: a value (also the config type)
    default: Any = None
    dest: str = ""  # the attribute of the parsed args; "" for the config key
    parse: Callable[[str], Any] | None = None  # a check beyond `kind`; ValueError refuses
    choices: tuple[str, ...] | None = None
    repeat: bool = False  # repeatable flag; a list in the config file
    metavar: str | None = None
    command_defaults: Mapping[str, Any] = field(default_factory=dict)  # {"render": "html,md"}
    read_by: tuple[str, ...] | None = None  # commands reading the key; None: all of `commands`
    path: bool = False  # a file or folder: relative to the config file's folder in the file
    switches: Mapping[str, str] | None = None  # exclusive flags, each setting a value

    @property
    def key(self) -> str:
        """The `[tool.perfreport]` key and the keyword of reporter.analyze()."""
        if self.switches:
            return self.dest
        return self.flags[-1].lstrip("-").replace("-", "_")

    @property
    def target(self) -> str:
        return self.dest or self.key

    @property
    def config_commands(self) -> tuple[str, ...]:
        return self.commands if self.read_by is None else self.read_by

    def default_for(self, command: str) -> Any:
        return self.command_defaults.get(command, self.default)


def _option(*flags: str, **spec: Any) -> Option:
    return Option(flags=flags, **spec)


R = (RUN,)
SEVERITY_NAMES = tuple(s.value for s in SEVERITIES[1:])
MODEL, STAGES, EXPERIMENTS, TIMING, HEALTH, DIST, GRAPH, OUTPUT, GATES, COMPARE = (
    "model and inputs",
    "stages",
    "experiments",
    "profile and timing",
    "training health",
    "several processes (torchrun)",
    "graph",
    "output",
    "budgets, thresholds and gates",
    "comparison",
)
_steps = ",".join(map(str, DEFAULT_STEPS))

OPTIONS: tuple[Option, ...] = (
    # ---------------------------------------------------------------- model and inputs
    _option("--model", dest="model_name", commands=R, group=MODEL,
            help="name of the model, factory or class in the file"),
    _option("--input-shape", repeat=True, metavar="N,C,H,W", commands=R, group=MODEL,
            help="shape of a random input tensor; repeat for several inputs"),
    _option("--dtype", commands=R, group=MODEL,
            help="dtype of the model and the --input-shape tensors (float32, bf16, ...); an "
            "integer dtype (int64) sets the --input-shape tensors only (token ids)"),
    _option("--input", dest="input_file", metavar="FILE.pt", path=True, commands=R, group=MODEL,
            help="inputs saved with torch.save (loaded with weights_only=True)"),
    _option("--checkpoint", metavar="FILE", path=True, commands=R, group=MODEL,
            help="state_dict to load into the model (weights_only=True)"),
    _option("--device", default="cpu", commands=R, group=MODEL,
            help="cpu (default), cuda, cuda:N or meta"),
    _option("--no-auto-meta", kind=bool, commands=R, group=MODEL,
            help="never fall back to the meta device when the weights would not fit"),
    _option("--seed", kind=int, parse=seed_value, default=0, commands=R, group=MODEL,
            help="seed for weights and random inputs: a whole number from 0 to 2**64-1 "
            "(default %(default)s)"),
    # ---------------------------------------------------------------- stages
    _option("--depth", kind=int, default=3, commands=R, group=STAGES,
            help="depth of the per-layer table (default %(default)s)"),
    _option("--only", commands=R, group=STAGES,
            help=f"run only these stages (comma-separated: {','.join(STAGE_NAMES)})"),
    _option("--skip", commands=R, group=STAGES, help="skip these stages (comma-separated)"),
    _option("--deploy", kind=bool, commands=R, group=STAGES,
            help="also check torch.export, torch.compile graph breaks and ONNX export (opt-in)"),
    _option("--train", kind=bool, commands=R, group=STAGES,
            help="profile training steps (forward, backward, AdamW) and run the "
            "training-health probe"),
    _option("--timeout", kind=float, default=1800.0, commands=R, group=STAGES,
            help="seconds the model process may run before it is stopped (default %(default)g)"),
    # ---------------------------------------------------------------- experiments
    _option("--experiments", kind=bool, commands=R, group=EXPERIMENTS,
            help="apply each automatic fix and time it before and after"),
    _option("--experiment-seconds", kind=float, default=1.0, commands=R, group=EXPERIMENTS,
            help="measuring time per side of each experiment (default %(default)g)"),
    _option("--experiment-compile", kind=bool, commands=R, group=EXPERIMENTS,
            help="include torch.compile among the experiments (slow on a CPU)"),
    # ---------------------------------------------------------------- profile and timing
    _option("--profile-steps", metavar="WAIT,WARMUP,ACTIVE", commands=R, group=TIMING,
            help="torch.profiler schedule: steps skipped, warmed up, recorded "
            f"(default {_steps})"),
    _option("--with-stack", kind=bool, commands=R, group=TIMING,
            help="record Python stacks in the trace (slower)"),
    # Five times Timer.blocked_autorange's default 0.2 s; benchmarks/profile.py compares
    # the median with Timer's at this budget. Warm-up gets up to half of it again.
    _option("--timing-seconds", kind=float, default=1.0, commands=R, group=TIMING,
            help="seconds of latency measurement after warm-up (default %(default)g)"),
    _option("--threads", kind=int, metavar="N", commands=R, group=TIMING,
            help="torch.set_num_threads(N) in the model process (default: torch's choice)"),
    _option("--batch-sweep", kind=bool, commands=R, group=TIMING,
            help="time batch 1, 2, 4, ... up to --sweep-max-batch or a memory/time limit"),
    _option("--sweep-max-batch", kind=int, default=1024, commands=R, group=TIMING,
            help="largest batch of --batch-sweep (default %(default)s)"),
    _option("--sweep-seconds", kind=float, default=10.0, commands=R, group=TIMING,
            help="time limit of --batch-sweep (default %(default)g)"),
    # ---------------------------------------------------------------- training health
    _option("--train-steps", kind=int, metavar="N", commands=R, group=HEALTH,
            help="run the health probe for exactly N training steps on a copy of the model "
            "(off by default; --train runs it for up to 20 steps within 3 s)"),
    _option("--optimizer", choices=("sgd", "adam", "adamw"), default="adam", commands=R,
            group=HEALTH, help="optimizer of the health probe (default %(default)s)"),
    _option("--lr", kind=float, commands=R, group=HEALTH,
            help="learning rate of the health probe (default: sgd 0.01, adam/adamw 0.001)"),
    _option("--compare-optimizers", kind=bool, commands=R, group=HEALTH,
            help="also run the same steps with SGD, SGD+momentum, Adam and AdamW and compare"),
    _option("--logdir", metavar="DIR", path=True, commands=R, group=HEALTH,
            help="TensorBoard run folder: put its scalar curves in the report"),
    # ---------------------------------------------------------------- several processes
    _option("--nproc-per-node", kind=int, metavar="N", commands=R, group=DIST,
            help="profile N training processes on this node with torchrun (DDP by default; "
            "gloo on CPU, nccl on CUDA) and report per-rank step time, communication and "
            "stragglers"),
    _option("--nnodes", kind=int, default=1, commands=R, group=DIST,
            help="nodes taking part (default %(default)s)"),
    _option("--rdzv-endpoint", metavar="HOST:PORT", commands=R, group=DIST,
            help="rendezvous of a multi-node run (c10d)"),
    _option("--ddp", "--fsdp", dest="wrapper", choices=("ddp", "fsdp"), commands=R, group=DIST,
            switches={"--ddp": "ddp", "--fsdp": "fsdp"},
            help="--ddp: wrap in DDP (default); --fsdp: wrap in FSDP"),
    # ---------------------------------------------------------------- graph
    _option("--graph-depth", kind=int, metavar="N", commands=R, group=GRAPH,
            help="module depth of the graph (default: the deepest that fits about 60 nodes)"),
    _option("--graph-format", choices=("svg", "png", "pdf"), default="svg", commands=R,
            group=GRAPH,
            help="also write graph.png or graph.pdf (graph.svg and graph.dot are always "
            "written)"),
    _option("--graph-colour", choices=("auto", "flops", "time"), default="auto", commands=R,
            group=GRAPH,
            help="colour graph nodes by FLOPs (params when FLOPs were not counted) or by "
            "measured time; auto: time when the profile stage ran (default)"),
    # ---------------------------------------------------------------- output
    # -o is read from the file by `run` only: render, trace and diff write elsewhere.
    _option("-o", "--out", path=True, commands=COMMANDS, read_by=R, group=OUTPUT,
            help="output folder (default: run ./perfreport-<model file stem>/, trace "
            "./perfreport-trace-<name>/, render the report's folder; diff writes files "
            "only with -o)"),
    # diff writes its own formats (md, html, json), so it does not read `format` either.
    _option("--format", default="html,json,md", commands=COMMANDS, read_by=(RUN, RENDER, TRACE),
            command_defaults={RENDER: "html,md", DIFF: "md,html,json"}, group=OUTPUT,
            help="files to write, comma-separated: html, json, md, pdf (diff, with -o: md, "
            "html, json) (default %(default)s)"),
    _option("--pdf", kind=bool, commands=(RUN, RENDER, TRACE), group=OUTPUT,
            help="also write report.pdf"),
    _option("--paper", choices=("a4", "letter"), default="a4", commands=(RUN, RENDER),
            group=OUTPUT, help="PDF paper size (default %(default)s)"),
    _option("-q", "--quiet", kind=bool, commands=COMMANDS, group=OUTPUT,
            help="print only errors, failed stages and crossed budgets (no progress or summary)"),
    _option("--debug", kind=bool, commands=COMMANDS, read_by=R, group=OUTPUT,
            help="show tracebacks"),
    # ---------------------------------------------------------------- gates
    _option("--fail-on", choices=SEVERITY_NAMES, commands=(RUN, TRACE), group=GATES,
            help="exit 1 when a finding of this severity or worse is reported"),
    _option("--budget", repeat=True, metavar="NAME=VALUE", commands=(RUN, DIFF), group=GATES,
            help="limit to hold the run (diff: HEAD) to, e.g. latency_ms=25, params=10M, "
            "latency=+5%% (relative to --baseline; diff: to BASE); repeatable; a crossed "
            "budget exits 1"),
    _option("--baseline", metavar="BASE.json", path=True, commands=R, group=GATES,
            help="report that relative budgets use"),
    # The file itself has no `config` key: it names the file.
    _option("--config", metavar="FILE", commands=COMMANDS, read_by=(), group=GATES,
            help="TOML file of settings: [tool.perfreport] keys, [budgets] and [thresholds], "
            "at its top level or under [tool.perfreport] (default: the nearest "
            "pyproject.toml)"),
    # ---------------------------------------------------------------- diff
    _option("--fail-on-regression", kind=bool, commands=(DIFF,), group=COMPARE,
            help="exit 1 when a figure got worse: a count that grew, or a timing whose "
            "interval for the change lies wholly beyond --threshold"),
    _option("--threshold", default="5%", commands=(DIFF,), group=COMPARE,
            help="smallest timing change that counts as worse or better (default %(default)s)"),
    _option("--confidence", default="95%", commands=(DIFF,), group=COMPARE,
            help="confidence of the timing intervals (default %(default)s: two runs of the same "
            "code are called worse at most 2.5%% of the time per figure)"),
    _option("--module-threshold", kind=float, default=0.10, commands=(DIFF,), group=COMPARE,
            help="list modules whose FLOPs or parameters moved by this fraction "
            "(default %(default).2f)"),
)  # fmt: skip
BY_KEY = {o.key: o for o in OPTIONS}
# Sub-tables of [tool.perfreport] read by budgets.py and config.py, not options.
TABLES = ("budgets", "thresholds")


def default(key: str) -> Any:
    """The default of the option with this config key (e.g. "timeout" -> 1800.0)."""
    return BY_KEY[key].default


def options_of(command: str) -> list[Option]:
    return [o for o in OPTIONS if command in o.commands]


def find(name: str) -> Option | None:
    """The option a keyword names: its key, its dest or one of its flags in snake_case."""
    for option in OPTIONS:
        names = {
            option.key,
            option.target,
            *(f.lstrip("-").replace("-", "_") for f in option.flags),
        }
        if name in names:
            return option
    return None


# ------------------------------------------------------------------ argparse
def add_options(parser: Any, command: str) -> None:
    """Add `command`'s options to an argparse parser, one argument group per heading."""
    import argparse

    groups: dict[str, Any] = {}
    for option in options_of(command):
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        group = groups[option.group]
        if option.switches:
            exclusive = group.add_mutually_exclusive_group()
            for flag, value in option.switches.items():
                exclusive.add_argument(
                    flag, dest=option.target, action="store_const", const=value,
                    help=option.help,
                )  # fmt: skip
            continue
        spec: dict[str, Any] = {"dest": option.target, "help": option.help}
        if option.kind is bool:
            spec["action"] = "store_true"
        else:
            spec["default"] = [] if option.repeat else option.default_for(command)
            spec["action"] = "append" if option.repeat else "store"
            spec["metavar"] = option.metavar
            spec["choices"] = option.choices
            if option.parse or option.kind is not str:
                spec["type"] = _argparse_type(option.parse or option.kind, argparse)
        group.add_argument(*option.flags, **spec)


def _argparse_type(parse: Callable[[str], Any], argparse: Any) -> Callable[[str], Any]:
    """`parse`, its ValueError message shown as written (argparse's own says only
    'invalid int value')."""
    if parse in (int, float):
        return parse

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = parse.__name__
    return checked


# ------------------------------------------------------------------ config files
TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def from_config(option: Option, value: Any, path: Path | None) -> Any:
    """A config file's value for `option`, checked as its flag's value would be, in the
    form the parsed args hold it."""

    def refuse(why: str) -> UsageError:
        return UsageError(f"{path}: {option.key} = {_shown(value)}: {why}")

    if option.repeat:
        if not isinstance(value, list):
            raise refuse('give a list, e.g. ["..."] (the flag is repeatable)')
        return [_item(option, v, refuse) for v in value]
    if not _is(value, option.kind):
        raise refuse(f"give {TYPE_WORDS[option.kind]}")
    if option.choices is not None and value not in option.choices:
        raise refuse(f"give one of {', '.join(option.choices)}")
    if option.parse is not None:
        try:
            return option.parse(str(value))
        except ValueError as exc:
            raise refuse(str(exc)) from None
    if option.path and path is not None:
        return str(path.parent / Path(value).expanduser())
    return float(value) if option.kind is float else value


def _item(option: Option, value: Any, refuse: Callable[[str], UsageError]) -> str:
    """One value of a repeatable option: a string, or a list of whole numbers for a shape."""
    if isinstance(value, str):
        return value
    shapes = option.key == "input_shape"
    if shapes and isinstance(value, list) and value and all(_is(v, int) for v in value):
        return ",".join(str(v) for v in value)
    raise refuse(
        "give a list of strings" + (", or of lists of sizes ([[8, 3, 224, 224]])" if shapes else "")
    )


def _is(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # TOML's true is not a number
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
