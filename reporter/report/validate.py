"""Reading report.json with its types checked: a report is input, and may be edited.

`perfreport render` and `perfreport diff` read reports from anywhere (a CI artifact, a pull
request). msgspec decodes the JSON straight into the Report dataclasses and checks every
field's type on the way, with a bounded depth, and refuses NaN and infinity (JSON has
neither). Any failure is one UsageError line (exit 2): exit 1 belongs to `diff
--fail-on-regression` ("regression found").
"""

from __future__ import annotations

from typing import Any

import msgspec

from reporter.errors import UsageError


class _Header(msgspec.Struct):
    schema_version: Any = None
    model: Any = None


def decode_report(text: str | bytes, origin: str, newest: int) -> Any:
    """The Report in `text`; UsageError naming `origin` and the first bad field."""
    from reporter.report import Report

    header = _decode(text, _Header, origin)
    if header.schema_version is None or header.model is None:
        raise UsageError(f"{origin} is not a perfreport report.json (no schema_version)")
    version = header.schema_version
    if type(version) is not int or version > newest:
        raise UsageError(
            f"{origin} has schema_version {str(version)[:20]}, newer than this perfreport "
            f"reads ({newest}): upgrade perfreport"
        )
    return _decode(text, Report, origin)


def _decode(text: str | bytes, tp: type, origin: str) -> Any:
    try:
        return msgspec.json.decode(text, type=tp)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{origin} is not a valid perfreport report: {exc}") from None
    except msgspec.DecodeError as exc:
        raise UsageError(f"{origin} is not valid JSON ({exc})") from None
    except RecursionError:
        raise UsageError(f"{origin} is nested too deeply to be a report") from None
