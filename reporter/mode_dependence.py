"""Which modules compute something different in training mode than in eval mode.

Found in two steps, because neither alone is both general and exact:

1. Candidates: modules whose class (below nn.Module) has a method that reads
   ``.training``. Code that never reads the flag cannot depend on it, so this finds
   Dropout, BatchNorm, DropPath/StochasticDepth and any custom module, without a list of
   names. It over-approximates: Dropout(p=0) reads the flag and does nothing with it.
2. Decision: torch's own classes are judged by their documented semantics (Dropout by
   p > 0, BatchNorm by its running statistics, attention and RNN layers by their dropout,
   transformer layers only choose a fused path). Any other candidate is run on its own
   input from one eval forward of the sample, once in eval and once with only its own flag
   set to training (RNG state and buffers restored), and the outputs are compared. A
   DropPath(0.0) then counts as unchanged and a DropPath(0.1) as changed, whatever its
   attribute names. Where values cannot be compared (meta device), a candidate counts as
   changed.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reporter.tensors import tensors_in

# Methods that set the flag rather than act on it.
MODE_SETTERS = frozenset({"train", "eval", "__init__", "__setstate__", "extra_repr"})
SAME_CODE = (
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.Transformer,
)


@dataclass
class ModeDependence:
    differs: list[str] = field(default_factory=list)  # module paths
    same: list[str] = field(default_factory=list)  # read the flag, behave the same
    types: dict[str, int] = field(default_factory=dict)  # class -> modules that differ
    compared: int = 0  # candidates decided by running them
    not_called: int = 0  # candidates the sample input never reached


def reads_training(module: nn.Module) -> bool:
    """Some method of the module's own classes reads or tests ``.training``."""
    for cls in type(module).__mro__:
        if cls in (nn.Module, object):
            break
        for name, attr in vars(cls).items():
            func = getattr(attr, "__func__", attr)
            code = getattr(func, "__code__", None)
            if name not in MODE_SETTERS and code is not None and _names_training(code):
                return True
    return False


def _names_training(code: types.CodeType) -> bool:
    if "training" in code.co_names:
        return True
    return any(isinstance(c, types.CodeType) and _names_training(c) for c in code.co_consts)


def known_behaviour(module: nn.Module) -> bool | None:
    """For torch's own train-dependent classes: does training mode change the output?
    None for any other class."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        # Without running statistics it normalises by the batch in both modes.
        return module.running_mean is not None
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return bool(module.track_running_stats)
    if isinstance(module, nn.MultiheadAttention):
        return module.dropout > 0
    if isinstance(module, nn.RNNBase):
        return module.dropout > 0 and module.num_layers > 1
    if isinstance(module, SAME_CODE):
        return False  # its own code only picks the fused path; its dropouts count apart
    return None


def mode_dependence(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ModeDependence:
    """Modules whose output changes with ``training``, judged as the module docstring says.
    Runs one forward (eval, no grad) only when a candidate is not one of torch's."""
    result = ModeDependence()
    unknown: dict[nn.Module, str] = {}
    for name, module in model.named_modules():
        if not reads_training(module):
            continue
        verdict = known_behaviour(module)
        if verdict is None:
            unknown[module] = name
        else:
            (result.differs if verdict else result.same).append(name or "(model)")
    if unknown:
        meta = any(t.device.type == "meta" for t in tensors_in((args, kwargs)))
        # Nothing can be compared on the meta device: every candidate counts as changed.
        verdicts = dict.fromkeys(unknown) if meta else _compare(model, args, kwargs, unknown)
        for module, name in unknown.items():
            verdict = verdicts.get(module)
            if verdict is None and module in verdicts:
                verdict = True  # could not compare the values: assume it changes
            if module not in verdicts:
                result.not_called += 1
                continue
            result.compared += 1
            (result.differs if verdict else result.same).append(name or "(model)")
    order = {name or "(model)": i for i, (name, _) in enumerate(model.named_modules())}
    result.differs.sort(key=lambda n: order.get(n, 0))
    result.same.sort(key=lambda n: order.get(n, 0))
    for name in result.differs:
        module = model if name == "(model)" else model.get_submodule(name)
        cls = type(module).__name__
        result.types[cls] = result.types.get(cls, 0) + 1
    return result


def _compare(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    candidates: dict[nn.Module, str],
) -> dict[nn.Module, bool | None]:
    """One eval forward; each candidate, when first called, runs again on the same input
    with its own flag set to training. True: outputs differ; None: not comparable."""
    verdicts: dict[nn.Module, bool | None] = {}
    inputs: dict[nn.Module, tuple[Any, Any]] = {}
    busy = [False]

    def before(module: nn.Module, h_args: Any, h_kwargs: Any) -> None:
        if not busy[0] and module not in verdicts and module not in inputs:
            # Objects passed beside the tensors (a KV cache) as they were before this
            # call: the eval call appends to them, and the second call must not see that.
            inputs[module] = (_fresh(h_args), _fresh(h_kwargs))

    def after(module: nn.Module, h_args: Any, h_kwargs: Any, output: Any) -> None:
        if busy[0] or module in verdicts or module not in inputs:
            return
        busy[0] = True
        a_args, a_kwargs = inputs.pop(module)
        try:
            with _own_flag_training(module), _restored_state(module, a_args):
                again = module.forward(*a_args, **a_kwargs)
            verdicts[module] = _differs(output, again)
        except Exception:  # noqa: BLE001 - raising in train mode is a difference too
            verdicts[module] = True
        finally:
            busy[0] = False

    handles = [m.register_forward_pre_hook(before, with_kwargs=True) for m in candidates]
    handles += [m.register_forward_hook(after, with_kwargs=True) for m in candidates]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    return verdicts


@contextmanager
def _own_flag_training(module: nn.Module) -> Iterator[None]:
    """Training mode for this module only: its children keep their eval behaviour, so a
    container is judged by its own code, not by a Dropout inside it."""
    module.training = True
    try:
        yield
    finally:
        module.training = False


@contextmanager
def _restored_state(module: nn.Module, args: Any) -> Iterator[None]:
    """Buffers (running statistics) and the random generators as they were."""
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    devices = sorted({t.device.index or 0 for t in tensors_in(args) if t.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)


def _fresh(value: Any) -> Any:
    """Tensors as they are; anything else among the arguments (a cache object, a list of
    past states) deep-copied, or as it is when it cannot be copied."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - an object that refuses copying is passed as is
        return value


def _differs(first: Any, second: Any) -> bool | None:
    a, b = tensors_in(first), tensors_in(second)
    if len(a) != len(b):
        return True
    for x, y in zip(a, b, strict=True):
        if x.device.type == "meta" or y.device.type == "meta":
            return None
        if x.shape != y.shape or x.dtype != y.dtype:
            return True
        if x.is_floating_point() or x.is_complex():
            if not torch.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True):
                return True
        elif not torch.equal(x, y):
            return True
    return False
