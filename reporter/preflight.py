"""Checks of the command line that need neither torch nor the model process.

They run in the parent before anything is started, so a typo costs milliseconds; the
loader runs them again, so it stays safe when used on its own.
"""

from __future__ import annotations

import re
from pathlib import Path

from reporter.errors import UsageError

DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float64": "float64", "fp64": "float64", "double": "float64",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "bool": "bool",
}  # fmt: skip


def check_model_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory: give the Python file that defines the model")
    if path.suffix != ".py":
        raise UsageError(f"{path} is not a Python file: give a .py file that defines the model")


def dtype_name(name: str) -> str:
    """The canonical torch dtype name for a --dtype value."""
    try:
        return DTYPE_NAMES[name.lower()]
    except KeyError:
        raise UsageError(
            f"unknown --dtype {name!r}: use one of {', '.join(sorted(DTYPE_NAMES))}"
        ) from None


def check_device_name(name: str) -> None:
    """The syntax only; whether CUDA is there is checked where torch is loaded."""
    if not re.fullmatch(r"cpu|meta|cuda(:\d+)?", name):
        raise UsageError(f"unknown --device {name!r}: use cpu, cuda, cuda:N or meta")


def check_input_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{flag} {path}: no such file")
