"""Record one real forward pass as a tree of calls: modules, functional ops, inputs, output.

Module hooks give the module calls; a TorchFunctionMode sees the torch functions and tensor
methods called between them (`torch.flatten`, the `+` of a residual, `F.relu`). Nothing is
traced symbolically, so data-dependent control flow and HF models work: the graph is what
actually ran on the sample input. Each tensor remembers the call that produced it, so every
call knows which calls fed it and with which shapes.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from reporter.module_hooks import forward_hooks
from reporter.tensors import tensors_in

# Ops that only re-view or re-type a tensor: the output is treated as the input itself, so
# the graph shows where data is computed, not every reshape between two layers.
PASS_THROUGH = frozenset(
    {
        "view",
        "reshape",
        "permute",
        "transpose",
        "contiguous",
        "unsqueeze",
        "squeeze",
        "expand",
        "expand_as",
        "view_as",
        "reshape_as",
        "to",
        "float",
        "half",
        "bfloat16",
        "double",
        "type",
        "type_as",
        "detach",
        "clone",
        "t",
        "getitem",
        "requires_grad_",
        # Attribute getters (Tensor.data, .T, .mT, .real): views of the same data. Shape
        # and dtype getters give no tensor and are never recorded.
        "get",
    }
)


@dataclass(slots=True)
class Call:
    idx: int
    kind: str  # "module", "op", "input" or "output"
    name: str  # module path ("" for the model), op name, or input name
    type: str  # module class name, or the op name
    parent: int | None
    leaf: bool = False  # a module without children: ops inside it are not recorded
    children: list[int] = field(default_factory=list)
    # (producer call index, shape) of each recorded tensor this call consumed (for a module:
    # was given), where edges start.
    inputs: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    in_shapes: tuple[tuple[int, ...], ...] = ()
    out_shapes: tuple[tuple[int, ...], ...] = ()
    end: int = 0  # index of the last call inside this one (itself when it has none)
    sig: int = 0  # structure hash: equal for blocks that fold together


@dataclass
class Recording:
    calls: list[Call]
    root: int  # index of the model's own call
    module_params: dict[str, int]  # module path -> parameters (recursive)


def _current_mode() -> Any:
    n = torch._C._len_torch_function_stack()
    return torch._C._get_function_stack_at(n - 1) if n else None


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def op_name(func: Any) -> str:
    """torch.add -> 'add', Tensor.__add__ -> 'add', Tensor.__iadd__ -> 'add_'."""
    name = getattr(func, "__name__", None) or str(func)
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith("i") and name[1:] in {"add", "sub", "mul", "truediv", "and", "or"}:
            name = name[1:] + "_"
        elif name.startswith("r") and name[1:] in {"add", "sub", "mul", "truediv", "matmul"}:
            name = name[1:]
    return name


class Recorder(TorchFunctionMode):
    """Builds the call list while the model runs; use `record(model, args, kwargs)`."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.stack: list[int] = []  # open module calls
        self.in_leaf = 0
        # id(tensor) -> (producing call, weak reference whose callback forgets the entry)
        self.producer: dict[int, tuple[int, Any]] = {}
        self.modules: dict[int, tuple[str, bool, str]] = {}  # id(module) -> path, leaf, type
        self.popped = False  # the mode is off the stack while a leaf runs

    # -- tensors -------------------------------------------------------------------
    def mark(self, t: torch.Tensor, call: int) -> None:
        key = id(t)
        entry = self.producer.get(key)
        if entry is None:
            # Forget the tensor when it dies, before its id can be reused. (A weak
            # reference with a callback: weakref.finalize costs several times more.)
            producer = self.producer
            ref = weakref.ref(t, lambda _, key=key: producer.pop(key, None))
        else:
            ref = entry[1]
        self.producer[key] = (call, ref)

    def consumed(self, value: Any) -> list[tuple[int, tuple[int, ...]]]:
        out = []
        for t in tensors_in(value):
            entry = self.producer.get(id(t))
            if entry is not None:
                out.append((entry[0], _shape(t)))
        return out

    def new_call(self, kind: str, name: str, type_: str, leaf: bool = False) -> Call:
        parent = self.stack[-1] if self.stack else None
        call = Call(idx=len(self.calls), kind=kind, name=name, type=type_, parent=parent, leaf=leaf)
        self.calls.append(call)
        if parent is not None:
            self.calls[parent].children.append(call.idx)
        return call

    # -- functional ops --------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.in_leaf or not self.stack:
            return out
        outs = tensors_in(out)
        if not outs:
            return out  # size(), dim(), item(): no data flows on
        ins = self.consumed((args, kwargs))
        if not ins:
            return out  # a constant built from nothing recorded (arange, ones, a mask)
        name = op_name(func)
        # x[idx] with a computed index is a gather: only a single-input op passes through.
        if name in PASS_THROUGH and len({p for p, _ in ins}) == 1:
            for t in outs:
                self.mark(t, ins[0][0])
            return out
        call = self.new_call("op", name, name)
        call.inputs = ins
        call.in_shapes = tuple(s for _, s in ins)
        call.out_shapes = tuple(_shape(t) for t in outs)
        call.end = call.idx
        for t in outs:
            self.mark(t, call.idx)
        return out

    # -- module hooks ----------------------------------------------------------------
    # Global hooks (one registration, not two per module: 80,000 registrations took 4 s).
    # The pre-hook sees positional inputs only, so a leaf's inputs are read in the post-hook,
    # which also sees keyword inputs; nothing inside a leaf changes which call produced them.
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        info = self.modules.get(id(module))
        if info is None:
            return  # a module that is not part of the model
        path, leaf, type_name = info
        call = self.new_call("module", path, type_name, leaf=leaf)
        self.stack.append(call.idx)
        if leaf:
            self.in_leaf += 1
            # Nothing inside a leaf is recorded: step out of the way of its ops entirely
            # (an interception costs ~30 µs even when it records nothing).
            if self.in_leaf == 1 and _current_mode() is self:
                torch._C._pop_torch_function_stack()
                self.popped = True

    def post_hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        info = self.modules.get(id(module))
        if info is None:
            return
        idx = self.stack.pop()
        call = self.calls[idx]
        call.end = len(self.calls) - 1
        outs = tensors_in(output)
        if not info[1]:
            # Reading .shape here would go through this mode too: step outside it.
            with torch._C.DisableTorchFunction():
                call.out_shapes = tuple(_shape(t) for t in outs)
                # What the module was given: the edge into it when it is drawn closed.
                call.inputs = self.consumed((args, kwargs) if kwargs else args)
            return
        # A leaf: the mode is off the stack until restore(), so shapes are read directly.
        shapes = []
        inputs = []
        producer = self.producer
        for t in tensors_in((args, kwargs) if kwargs else args):
            shape = tuple(t.shape)
            shapes.append(shape)
            entry = producer.get(id(t))
            if entry is not None:
                inputs.append((entry[0], shape))
        call.in_shapes = tuple(shapes)
        call.inputs = inputs
        call.out_shapes = tuple(_shape(t) for t in outs)
        self.in_leaf -= 1
        for t in outs:
            self.mark(t, idx)
        if self.in_leaf == 0:
            self.restore()

    def restore(self) -> None:
        """Put the mode back after a leaf, or after a forward that raised inside one."""
        if self.popped:
            torch._C._push_on_torch_function_stack(self)
            self.popped = False
        self.in_leaf = 0


@contextmanager
def recording(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[Callable[[Any], Recording]]:
    """Record the forward of ``model`` that runs inside the block (under no_grad).

    Yields ``finish(output)``, which turns what ran into a Recording once the forward has
    returned ``output``. Other instrumentation may wrap the same forward (the shared
    inference pass runs torchinfo's inside this): every other call is ignored.
    """
    rec = Recorder()
    modules = list(model.named_modules())
    for path, module in modules:
        leaf = all(child is None for child in module._modules.values())
        rec.modules[id(module)] = (path, leaf, type(module).__name__)
    input_tensors: list[torch.Tensor] = []
    for i, value in enumerate(args):
        label = "input" if len(args) == 1 and not kwargs else f"input {i}"
        input_tensors += _add_input(rec, label, value)
    for key, value in kwargs.items():
        input_tensors += _add_input(rec, key, value)

    def finish(output: Any) -> Recording:
        roots = [c.idx for c in rec.calls if c.kind == "module" and c.parent is None]
        if not roots:
            raise RuntimeError("the model's forward hooks never ran: nothing to draw")
        out_call = rec.new_call("output", "output", "output")
        outs = tensors_in(output)
        out_call.inputs = rec.consumed(outs)
        out_call.in_shapes = tuple(_shape(t) for t in outs)
        out_call.end = out_call.idx
        _prune_dead_ops(rec.calls)
        _hash_structure(rec.calls)
        return Recording(
            calls=rec.calls, root=roots[0], module_params=parameters_by_module(modules)
        )

    try:
        with forward_hooks(rec.pre_hook, rec.post_hook, with_kwargs=True), rec:
            try:
                yield finish
            finally:
                rec.restore()
    finally:
        del input_tensors


def record(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Recording:
    """Run the model once on the inputs (no grad) and return what ran, in order."""
    # One thread: the recording needs shapes, not speed, and on a busy machine OpenMP
    # synchronisation makes each small CPU op cost up to 100x more (measured: 10,000 blocks
    # 20 s with 2 threads under load, 2 s with 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # The recording makes an object per call and per tensor: the cyclic GC would walk that
    # growing heap again and again (10,000 blocks: 8.4 s with it, 4.2 s without).
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        with torch.no_grad(), recording(model, args, kwargs) as finish:
            output = model(*args, **kwargs)
        return finish(output)
    finally:
        torch.set_num_threads(threads)
        if gc_was_on:
            gc.enable()


def parameters_by_module(modules: list[tuple[str, nn.Module]]) -> dict[str, int]:
    """Module path -> its parameters and its children's, without walking every subtree.

    Modules come parent first, so a pass backwards adds each module's own count to its
    parent's. A tensor shared by two modules counts in each.
    """
    own: dict[str, int] = {}
    for path, module in modules:
        # _parameters directly: parameters(recurse=False) costs 20 µs a module in generators.
        own[path] = sum(p.numel() for p in module._parameters.values() if p is not None)
    total = dict(own)
    for path in reversed(list(own)):
        if path:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            if parent in total:
                total[parent] += total[path]
    return total


def _add_input(rec: Recorder, label: str, value: Any) -> list[torch.Tensor]:
    tensors = tensors_in(value)
    if not tensors:
        return []
    call = rec.new_call("input", label, "input")
    call.out_shapes = tuple(_shape(t) for t in tensors)
    call.end = call.idx
    for t in tensors:
        rec.mark(t, call.idx)
    return tensors


def _prune_dead_ops(calls: list[Call]) -> None:
    """Drop ops whose result feeds nothing drawn: `x.norm() > 1` only steers control flow.

    Consumers come after producers, so one pass backwards finds every dead chain.
    """
    needed: set[int] = set()
    dead: set[int] = set()
    for call in reversed(calls):
        if call.kind == "op" and call.idx not in needed:
            dead.add(call.idx)
            continue
        needed.update(p for p, _ in call.inputs)
    for call in calls:
        if call.idx in dead:
            call.inputs = []
        elif call.children:
            call.children = [c for c in call.children if c not in dead]


def _hash_structure(calls: list[Call]) -> None:
    """Children come after their parent, so one pass backwards hashes bottom-up."""
    for call in reversed(calls):
        name = call.name if call.kind in ("op", "input", "output") else ""
        call.sig = hash(
            (
                call.kind,
                call.type,
                name,
                call.in_shapes,
                call.out_shapes,
                tuple(calls[c].sig for c in call.children),
            )
        )
