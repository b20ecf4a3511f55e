"""One line for an exception raised while a model file was imported: which of the file's
statements failed and the innermost error behind it.

Libraries wrap import errors: transformers' lazy module turns "operator torchvision::nms
does not exist" into ModuleNotFoundError("Could not import module 'LlamaConfig'"), raised
``from`` the real one, with no module name. The wrapper says nothing a user can act on, so
the line names the root of the chain, where it was raised and what wrapped it.
"""

from __future__ import annotations

import traceback
from pathlib import Path

MAX_CHAIN = 50  # a chain that loops or runs this deep is cut here


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions behind it, outermost first: each one's explicit cause
    (``raise X from e``), else the exception it was raised while handling."""
    chain = [exc]
    while len(chain) < MAX_CHAIN:
        current = chain[-1]
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        if following is None or any(following is seen for seen in chain):
            break
        chain.append(following)
    return chain


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception that says something: the end of the chain, unless that is
    an empty one (no message), which a message-bearing one wrapped."""
    chain = exception_chain(exc)
    for candidate in reversed(chain):
        if _message(candidate):
            return candidate
    return chain[-1]


def describe(exc: BaseException, path: Path) -> str:
    """``{path}: importing it failed at line N (`statement`): Type: message``, naming the
    root, then where it was raised and what wrapped it, when that is not the root."""
    root = root_cause(exc)
    statement = _statement(exc, path)
    head = f"{path}: importing it failed at {statement}: " if statement else f"{path}: "
    if isinstance(root, ModuleNotFoundError) and root.name:
        what = f"cannot import {root.name!r} ({_message(root) or 'not found'})"
        what += ": install it in this environment"
    else:
        what = type_and_message(root)
    extra = []
    where = _raised_at(root)
    if root is not exc:
        if where:
            extra.append(f"raised in {where}")
        extra.append(f"reported as {type_and_message(exc)}")
    elif where and not statement:
        extra.append(f"raised in {where}")
    tail = f" ({'; '.join(extra)}; --debug shows the whole chain)" if extra else ""
    return head + what + tail


def model_frame(exc: BaseException, path: Path) -> traceback.FrameSummary | None:
    """The deepest frame of the model file ``path`` in ``exc``'s traceback, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return frames[-1] if frames else None


def _statement(exc: BaseException, path: Path) -> str:
    """'line N (`source`)' for the deepest frame of the model file in the traceback."""
    frame = model_frame(exc, path)
    if frame is None:
        return ""
    source = (frame.line or "").strip()
    return f"line {frame.lineno} (`{_shorten(source, 80)}`)" if source else f"line {frame.lineno}"


def _raised_at(exc: BaseException) -> str:
    """'file:line' of the frame that raised ``exc``, the path cut to its package."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    parts = Path(frame.filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            parts = parts[parts.index(marker) + 1 :]
            break
    else:
        parts = parts[-2:]
    return f"{'/'.join(parts)}:{frame.lineno}"


def type_and_message(exc: BaseException) -> str:
    """'Type: first line of the message' (shortened), or 'Type' without one."""
    message = _message(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _message(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return _shorten(lines[0].strip(), 200) if lines else ""


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, control characters escaped (a message or a source
    line is untrusted text bound for a terminal)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
