"""Times every op of a forward pass and counts its FLOPs and bytes.

A dispatch mode sees each op the kernels run for (after composite ops such as
``aten::linear`` have been decomposed, so no op is counted inside another), times the
call itself (CPU: the wall time of the call; CUDA: events around it, read after the
pass), counts its FLOPs with FlopCounterMode's formulas plus perfreport's own
(``flop_formulas.py``) and its bytes as the sizes of its input and output tensors.
Global module hooks, kept to the model's modules, name the module each op ran in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from reporter.flop_formulas import EXTRA_FLOP_FORMULAS
from reporter.module_hooks import forward_hooks
from reporter.roofline.analysis import OpCall


def time_call(
    device: torch.device, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, float]:
    """(result, µs) of one call; on CUDA the GPU time between events around it."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = func(*args, **kwargs)
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end) * 1000
    t0 = time.perf_counter_ns()
    out = func(*args, **kwargs)
    return out, (time.perf_counter_ns() - t0) / 1000


def _tensors(value: Any) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(value)
    seen: set[int] = set()
    out = []
    for t in leaves:
        if isinstance(t, torch.Tensor) and id(t) not in seen and t.layout == torch.strided:
            seen.add(id(t))
            out.append(t)
    return out


def _nbytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _shapes(tensors: list[torch.Tensor]) -> str:
    return ", ".join(str(list(t.shape)) for t in tensors)


class OpTimer(TorchDispatchMode):
    """Records one OpCall per op (after ``resolve()``), in execution order."""

    def __init__(self, device: torch.device, modules: Callable[[], str]) -> None:
        super().__init__()
        self.device = device
        self.current_module = modules
        self.registry = FlopCounterMode(
            display=False, custom_mapping=EXTRA_FLOP_FORMULAS
        ).flop_registry
        self.pending: list[tuple[str, str, str, int, int, int, Any]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        inputs = _tensors((args, kwargs))
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = func(*args, **kwargs)
            end.record()
            timing: Any = (start, end)
        else:
            t0 = time.perf_counter_ns()
            out = func(*args, **kwargs)
            timing = (time.perf_counter_ns() - t0) / 1000
        # Views and in-place results share storage with an input: they move no new bytes.
        in_ids = {id(t) for t in inputs}
        outputs = [t for t in _tensors(out) if id(t) not in in_ids]
        if func.is_view:
            in_bytes = out_bytes = 0
        else:
            in_bytes, out_bytes = _nbytes(inputs), _nbytes(outputs)
        formula = self.registry.get(func._overloadpacket)
        flops = int(formula(*args, **kwargs, out_val=out)) if formula is not None else 0
        name = func._overloadpacket._qualified_op_name
        self.pending.append(
            (name, _shapes(inputs), self.current_module(), flops, in_bytes, out_bytes, timing)
        )
        return out

    def resolve(self) -> list[OpCall]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        calls = []
        for name, shapes, module, flops, in_b, out_b, timing in self.pending:
            us = timing[0].elapsed_time(timing[1]) * 1000 if isinstance(timing, tuple) else timing
            calls.append(OpCall(name, shapes, module, flops, in_b, out_b, us))
        return calls


@contextmanager
def module_stack(model: torch.nn.Module) -> Iterator[Callable[[], str]]:
    """Yields a function that names the innermost of the model's modules running now.

    Global hooks, as the profile's scopes: a hook attached to a module would turn off
    nn.TransformerEncoderLayer's fused fast path."""
    names = {id(m): path for path, m in model.named_modules()}
    stack: list[str] = []

    def pre(mod: Any, args: Any) -> None:
        if id(mod) in names:
            stack.append(names[id(mod)])

    def post(mod: Any, args: Any, output: Any) -> None:
        if id(mod) in names and stack:
            stack.pop()

    with forward_hooks(pre, post, always_call=True):
        yield lambda: stack[-1] if stack else ""


def timed_forward(
    model: torch.nn.Module, run: Callable[[], Any], device: torch.device
) -> list[OpCall]:
    """One forward under the timer; the op calls in execution order."""
    with module_stack(model) as current, OpTimer(device, current) as timer:
        run()
    return timer.resolve()
