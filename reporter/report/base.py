"""Generic dataclass <-> JSON conversion for the Report tree.

Every section is a plain dataclass whose fields are JSON types, lists, dicts with string
keys, other dataclasses or ``None``. ``to_data`` and ``from_data`` walk the type hints, so
a section needs no serialisation code of its own.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """Turn a dataclass tree into JSON-ready dicts and lists (NaN/inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@cache
def type_hints(cls: type) -> dict[str, Any]:
    """Resolved field types of a dataclass (cached: the tree is walked for every report)."""
    return typing.get_type_hints(cls)


def from_data(cls: type[T], data: Any) -> T:
    """Build ``cls`` from JSON data; unknown keys are ignored, missing ones take defaults."""
    return _convert(cls, data)


def _convert(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], data)
        return data  # unions of several types are stored as plain JSON values
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v) for v in data]
    if origin is dict:
        _, item = typing.get_args(tp) or (str, Any)
        return {k: _convert(item, v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        hints = type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: _convert(hints[k], v) for k, v in data.items() if k in names})
    if tp is float and isinstance(data, int):
        return float(data)
    return data
