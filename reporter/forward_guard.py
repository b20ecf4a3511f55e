"""Name the module where a forward pass failed, with its input shapes.

torchinfo and the profiler only say that the forward failed; forward pre-hooks keep a
stack of the modules entered, so on an exception the innermost one is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from reporter.errors import UsageError
from reporter.module_hooks import forward_hooks
from reporter.tensors import tensors_in


class ForwardError(UsageError):
    """The model's forward pass failed on the sample input."""


def describe_shapes(value: Any) -> str:
    """Shapes of the tensors in an input, e.g. '(8, 36864)' or '(1, 3), (1,)'."""
    shapes = [tuple(t.shape) for t in tensors_in(value)]
    return ", ".join(str(s) if len(s) != 1 else f"({s[0]},)" for s in shapes) or "no tensors"


@contextmanager
def locate_failures(model: nn.Module) -> Iterator[None]:
    """Turn an exception in the model's forward into ForwardError naming the module."""
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    stack: list[tuple[nn.Module, Any]] = []

    def pre(module: nn.Module, args: Any) -> None:
        if id(module) in names:
            stack.append((module, args))

    def post(module: nn.Module, args: Any, output: Any) -> None:
        if stack and stack[-1][0] is module:
            stack.pop()

    # post only on success: the module whose forward raised stays on top of the stack.
    with forward_hooks(pre, post):
        try:
            yield
        except ForwardError:
            raise
        except Exception as exc:
            if not stack:
                raise
            module, args = stack[-1]
            raise ForwardError(_message(names[id(module)], module, args, exc)) from exc


def _message(name: str, module: nn.Module, args: Any, exc: BaseException) -> str:
    where = f"`{name}`" if name else "the model's own forward"
    expects = module.extra_repr().strip()
    kind = f"{type(module).__name__}({expects})" if expects else type(module).__name__
    while exc.__cause__ is not None:  # torchinfo wraps the model's own error
        exc = exc.__cause__
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"the forward pass failed in {where} ({kind}) given input of shape "
        f"{describe_shapes(args)}: {detail}"
    )
