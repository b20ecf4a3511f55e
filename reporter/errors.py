"""Errors the CLI turns into one line on stderr and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad usage or input: the message names what is wrong and what to do."""

    detail: str = ""  # the model process's traceback behind it, shown with --debug
