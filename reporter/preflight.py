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


def check_integer_dtype(name: str, input_shapes: list[list[int]]) -> str | None:
    """An integer or bool --dtype only sets the random --input-shape tensors (the weights
    stay floating). Without --input-shape it would do nothing: refused. Otherwise the note
    that says so."""
    canonical = dtype_name(name)
    if canonical.startswith(("float", "bfloat")):
        return None
    if not input_shapes:
        raise UsageError(
            f"--dtype {name} only sets the dtype of --input-shape tensors (a model's weights "
            "stay floating point): add --input-shape, or drop --dtype"
        )
    return (
        f"--dtype {name} applies to the random --input-shape inputs only ({canonical}, values "
        "0 and 1); the model's weights keep their floating-point dtype"
    )


def check_device_name(name: str) -> None:
    """The syntax only; whether CUDA is there is checked where torch is loaded."""
    if not re.fullmatch(r"cpu|meta|cuda(:\d+)?", name):
        raise UsageError(f"unknown --device {name!r}: use cpu, cuda, cuda:N or meta")


def check_input_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{flag} {path}: no such file")
