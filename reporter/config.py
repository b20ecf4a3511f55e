"""Settings from TOML: `[tool.perfreport]` in the nearest pyproject.toml, or --config FILE.

Its keys are the options' (reporter/option_schema.py: a flag's name in snake_case,
`timing_seconds = 2.0`, `train = true`), beside the `[budgets]` and `[thresholds]` tables.
A --config file may hold the same keys and tables at its top level or under
`[tool.perfreport]`.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from reporter.errors import UsageError
from reporter.option_schema import BY_KEY, TABLES, from_config


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` or a folder above it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML ({exc})") from None


def perfreport_table(config: str | None, search_from: Path) -> tuple[dict[str, Any], Path | None]:
    """The perfreport settings and the file they came from ({} and None when there are none)."""
    if config:
        path = Path(config)
        data = read_toml(path)
        tool = data.get("tool")
        if isinstance(tool, dict) and "perfreport" in tool:
            return _table(tool["perfreport"], path), path
        return {k: v for k, v in data.items() if k != "tool"}, path  # `tool`: other tools'
    path = find_pyproject(search_from)
    if path is None:
        return {}, None
    tool = read_toml(path).get("tool", {})
    if not isinstance(tool, dict):
        return {}, path  # `tool` is not ours to judge
    return _table(tool.get("perfreport", {}), path), path


def _table(value: Any, path: Path) -> dict[str, Any]:
    """The settings when they are a table; one line for `[tool] perfreport = "oops"`."""
    if not isinstance(value, dict):
        raise UsageError(
            f"{path}: tool.perfreport must be a table ([tool.perfreport]), not {str(value)[:40]!r}"
        )
    return value


def options_from(table: dict[str, Any], path: Path | None, command: str) -> dict[str, Any]:
    """The values the file sets for `command`'s options, by the parsed args' name. Every
    key is checked, whichever command reads it, so a mistake shows on the first run."""
    values = {}
    for key, value in table.items():
        if key in TABLES:
            continue
        option = BY_KEY.get(key)
        if option is None or not option.config_commands:
            close = difflib.get_close_matches(key, [*settable(), *TABLES], n=1)
            hint = f": did you mean {close[0]!r}?" if close else ": see perfreport run --help"
            raise UsageError(f"{path}: unknown key {key!r}{hint}")
        checked = from_config(option, value, path)
        if command in option.config_commands:
            values[option.target] = checked
    return values


def settable() -> list[str]:
    """The keys a config file may set."""
    return [key for key, option in BY_KEY.items() if option.config_commands]


def thresholds_from(
    table: dict[str, Any], path: Path | None, known: dict[str, float]
) -> dict[str, float]:
    """[thresholds] overrides, checked against the thresholds the rules declare."""
    raw = table.get("thresholds", {})
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: [tool.perfreport.thresholds] must be a table of NAME = NUMBER")
    out = {}
    for name, value in raw.items():
        if name not in known:
            raise UsageError(
                f"{path}: unknown threshold {name!r}: see docs/rules.md for the names "
                f"(e.g. {next(iter(sorted(known)))})"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{path}: threshold {name} = {value!r} is not a number")
        out[name] = float(value)
    return out
