"""Model file -> Subject, following the conventions in the README.

Every way this can go wrong raises UsageError with one line that says what was found and
what to add or pass instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reporter import import_errors, meta_attention
from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.preflight import (
    check_device_name,
    check_integer_dtype,
    check_model_file,
    dtype_name,
)
from reporter.subject import Subject

MODEL_FACTORIES = ("build_model", "get_model", "create_model")
INPUT_NAMES = ("example_inputs", "example_input", "sample_input")


def parse_dtype(name: str) -> torch.dtype:
    return getattr(torch, dtype_name(name))


def parse_device(name: str) -> torch.device:
    check_device_name(name)
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {name} asked for CUDA, but this torch build or machine has no "
                "CUDA device: drop --device or use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    return device


def load_subject(options: RunOptions) -> Subject:
    """Import the model file and build the model and its sample inputs."""
    device = parse_device(options.device)
    dtype = parse_dtype(options.dtype) if options.dtype else None
    dtype_note = check_integer_dtype(options.dtype, options.input_shapes) if dtype else None
    path = Path(options.model_file)
    torch.manual_seed(options.seed)
    namespace = import_model_file(path)
    notes: list[str] = [dtype_note] if dtype_note else []
    if device.type != "meta" and options.auto_meta:
        device = _meta_if_too_big(namespace, path, options, dtype, device, notes)
    if device.type == "meta" and options.checkpoint:
        raise UsageError("--checkpoint needs real weights: drop it or use --device cpu/cuda")
    torch.manual_seed(options.seed)
    with _building_on(device):
        model, found_by = find_model(namespace, path, options.model_name)
    built_in_train_mode = model.training
    if options.checkpoint:
        load_checkpoint(model, Path(options.checkpoint))
    torch.manual_seed(options.seed)
    # Built on the CPU even for meta (the sample input is small beside the weights), so
    # that its values can say whether the attention mask pads.
    inputs, input_found_by = find_inputs(namespace, path, options, dtype)
    args, kwargs = split_inputs(inputs)
    padding = None
    if device.type == "meta":
        padding = meta_attention.attention_padding(model, args, kwargs)
        _attention_on_meta(model, padding, notes)
    if dtype is not None and dtype.is_floating_point:
        model = model.to(dtype)
    model = model.to(device)
    model.eval()
    args, kwargs = to_device((args, kwargs), device)
    return Subject(
        model=model,
        args=args,
        kwargs=kwargs,
        device=device,
        source=str(path),
        name=path.stem,
        found_by=found_by,
        input_found_by=input_found_by,
        loss_fn=_optional_callable(namespace, "loss_fn"),
        eval_batches=_optional_callable(namespace, "eval_batches"),
        checkpoint=options.checkpoint,
        built_in_train_mode=built_in_train_mode,
        namespace=namespace,
        notes=notes,
        attention_padding=padding,
    )


def _attention_on_meta(model: nn.Module, padding: bool | None, notes: list[str]) -> None:
    """Hugging Face's SDPA path reads mask values (.item()), which meta tensors lack.

    With transformers' mask checks that meta_attention answers, SDPA stays (the passes
    then run it as the CPU would); otherwise attention is switched to eager.
    """
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    if current == "sdpa" and meta_attention.hf_mask_checks_patchable():
        notes.append(meta_attention.note(padding))
        return
    if current in (None, "eager") or not hasattr(model, "set_attn_implementation"):
        return
    model.set_attn_implementation("eager")
    notes.append(
        f"Attention was switched from {current!r} to 'eager' to run on the meta device; its "
        "matrix multiplications are counted as FLOPs, and its batch x heads x S x S scores "
        "as memory, which a fused kernel does not hold."
    )


def _building_on(device: torch.device) -> Any:
    """Build under torch.device('meta') so no weight is allocated; elsewhere as written."""
    return torch.device("meta") if device.type == "meta" else contextlib.nullcontext()


def _meta_if_too_big(
    namespace: dict[str, Any],
    path: Path,
    options: RunOptions,
    dtype: torch.dtype | None,
    device: torch.device,
    notes: list[str],
) -> torch.device:
    """Build the model on meta first; fall back to meta when its weights would not fit."""
    try:
        with torch.device("meta"):
            probe, _ = find_model(namespace, path, options.model_name)
    except Exception:
        return device  # the model cannot be built on meta: build it for real as asked
    unique = {id(p): p for p in probe.parameters()}
    itemsize = dtype.itemsize if dtype is not None and dtype.is_floating_point else None
    need = sum(p.numel() * (itemsize or p.element_size()) for p in unique.values())
    free = available_memory(device)
    if not free or need <= MEMORY_HEADROOM * free:
        return device
    gib = 2**30
    notes.append(
        f"The parameters alone need {need / gib:.1f} GiB but {device.type} has "
        f"{free / gib:.1f} GiB free: the model was analysed on the meta device (no weights "
        "allocated; profile and timing skipped). Pass --no-auto-meta to forbid this."
    )
    return torch.device("meta")


MEMORY_HEADROOM = 0.8  # leave room for activations and the allocator


def available_memory(device: torch.device) -> int:
    """Free bytes on the device: cudaMemGetInfo for a GPU; for the CPU MemAvailable, or
    what the cgroup's limit leaves when that is less (memlimit.py)."""
    from reporter.memlimit import available_bytes, meminfo_available

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_bytes(meminfo_available())


def import_model_file(path: Path) -> dict[str, Any]:
    """Execute the model file as a module and return its globals."""
    check_model_file(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\0" in source:
        raise UsageError(f"{path} is not Python source (it holds binary data)")
    module_name = f"perfreport_model_{path.stem}".replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    add_model_folder(path.parent)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        where = exc.filename if exc.filename and exc.filename != str(path) else path
        raise UsageError(f"{where}:{exc.lineno}: syntax error: {exc.msg}") from None
    except SystemExit as exc:
        raise UsageError(f"{path} called sys.exit({exc.code}) while being imported") from None
    except Exception as exc:
        # Chained to the original, so that --debug shows every exception behind the line.
        raise UsageError(import_errors.describe(exc, path)) from exc
    return vars(module)


def add_model_folder(folder: Path) -> None:
    """Let the model file import its neighbours, after everything installed: a
    `torchinfo.py` or `reporter/` beside the model must not shadow the real package."""
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def find_model(namespace: dict[str, Any], path: Path, name: str | None) -> tuple[nn.Module, str]:
    """Apply the model conventions in order; return the model and how it was found."""
    if name:
        if name not in namespace:
            raise UsageError(f"--model {name}: {path.name} defines no {name!r}")
        return _model_from(namespace[name], name, path), f"--model {name}"
    for factory in MODEL_FACTORIES:
        if callable(namespace.get(factory)):
            return _model_from(namespace[factory], factory, path), f"{factory}()"
    if isinstance(namespace.get("model"), nn.Module):
        return namespace["model"], "module-level `model`"
    module_name = namespace.get("__name__")
    classes = [
        v
        for v in namespace.values()
        if inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == module_name
    ]
    no_arg = [c for c in classes if _constructible_without_args(c)]
    if len(no_arg) == 1:
        return _model_from(no_arg[0], no_arg[0].__name__, path), f"class {no_arg[0].__name__}"
    if len(no_arg) > 1:
        names = ", ".join(c.__name__ for c in no_arg)
        raise UsageError(
            f"{path.name} defines several models ({names}): pick one with --model NAME "
            "or add a build_model() function"
        )
    found = f" (found {', '.join(c.__name__ for c in classes)}, all needing arguments)"
    raise UsageError(
        f"no model found in {path.name}{found if classes else ''}: looked for --model, "
        "build_model()/get_model()/create_model(), a module-level `model`, and an nn.Module "
        "subclass with a no-argument constructor; add `def build_model(): return MyNet()`"
    )


def _model_from(obj: Any, label: str, path: Path) -> nn.Module:
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise UsageError(f"{label} in {path.name} is a {type(obj).__name__}, not a model")
    call = f"{label}()"
    try:
        model = obj()
    except TypeError as exc:
        if _constructible_without_args(obj):
            raise UsageError(f"{call} in {path.name} raised {_describe(exc)}") from None
        raise UsageError(f"{call} in {path.name} needs arguments: {exc}") from None
    except Exception as exc:
        raise UsageError(
            f"{call} in {path.name} {_where(exc, path)}raised {_describe(exc)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"{call} in {path.name} returned {type(model).__name__}, not an nn.Module")
    return model


def _constructible_without_args(obj: Any) -> bool:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in sig.parameters.values()
    )


def find_inputs(
    namespace: dict[str, Any], path: Path, options: RunOptions, dtype: torch.dtype | None
) -> tuple[Any, str]:
    """The sample input: --input-shape, --input FILE, or the file's example_inputs."""
    if options.input_shapes:
        return random_inputs(options.input_shapes, dtype, options.device), "--input-shape"
    if options.input_file:
        return load_input_file(Path(options.input_file)), f"--input {options.input_file}"
    for name in INPUT_NAMES:
        if name not in namespace:
            continue
        value = namespace[name]
        if callable(value) and not isinstance(value, torch.Tensor):
            try:
                value = value()
            except Exception as exc:
                raise UsageError(
                    f"{name}() in {path.name} {_where(exc, path)}raised {_describe(exc)}"
                ) from None
            name = f"{name}()"
        if dtype is not None and dtype.is_floating_point:
            value = _cast_floats(value, dtype)
        return value, name
    raise UsageError(
        f"no sample input for the model in {path.name}: add "
        "`def example_inputs(): return torch.randn(1, 3, 224, 224)` to the file, "
        "or pass --input-shape 1,3,224,224 (or --input FILE.pt)"
    )


def random_inputs(
    shapes: list[list[int]], dtype: torch.dtype | None, device: str
) -> tuple[torch.Tensor, ...]:
    """The --input-shape tensors, refused in one line when they cannot fit in memory."""
    itemsize = (dtype or torch.float32).itemsize
    need = sum(math.prod(shape) for shape in shapes) * itemsize
    free = available_memory(torch.device(device)) if device != "meta" else 0
    shown = " ".join(",".join(map(str, s)) for s in shapes)
    if free and need > free:
        raise UsageError(
            f"--input-shape {shown}: the inputs need {need / 2**30:.1f} GiB but "
            f"{free / 2**30:.1f} GiB is free: give a smaller shape"
        )
    try:
        return tuple(_random_tensor(s, dtype) for s in shapes)
    except (RuntimeError, MemoryError) as exc:
        raise UsageError(f"--input-shape {shown}: cannot allocate the inputs ({exc})") from None


def _random_tensor(shape: list[int], dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is None or dtype.is_floating_point:
        return torch.randn(*shape, dtype=dtype or torch.float32)
    if dtype == torch.bool:
        return torch.zeros(*shape, dtype=dtype)
    return torch.randint(0, 2, shape, dtype=dtype)  # valid ids for any embedding


def load_input_file(path: Path) -> Any:
    data = _safe_load(path, "--input")
    if not _has_tensor(data):
        raise UsageError(
            f"--input {path} holds a {type(data).__name__}, not a tensor, tuple, list or dict "
            "of tensors: save one with torch.save(tensor, path)"
        )
    return data


def load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load a state_dict (weights only) and name any missing or unexpected keys."""
    state = _safe_load(path, "--checkpoint")
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UsageError(
            f"--checkpoint {path} is not a state_dict: save one with "
            "torch.save(model.state_dict(), path)"
        )
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_first(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_first(unexpected)}")
        raise UsageError(f"--checkpoint {path} does not fit the model: {'; '.join(parts)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split("\n\t")[1:2]).strip() or str(exc)
        raise UsageError(f"--checkpoint {path} does not fit the model: {detail}") from None


def _safe_load(path: Path, flag: str) -> Any:
    if not path.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if any(w in text.lower() for w in UNSAFE_PICKLE):
            raise UsageError(
                f"{flag} {path} needs unsafe unpickling, which perfreport refuses "
                "(torch.load weights_only=True): save plain tensors or a state_dict"
            ) from None
        raise UsageError(
            f"{flag} {path} is not a file torch.save wrote ({_load_error(text, exc)})"
        ) from None


# torch's words for a pickle that would call or import something weights_only forbids
UNSAFE_PICKLE = ("unsupported global", "safe_globals", "unrecognized function", "is blocked")


def _load_error(text: str, exc: Exception) -> str:
    """torch.load's reason without its advice: it suggests weights_only=False, which would
    run whatever the file holds, and perfreport never does that."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    advice = ("Weights only load failed", "In PyTorch", "Please file", "Check the documentation")
    reasons = [x for x in lines if not x.startswith(advice) and "weights_only" not in x]
    return reasons[0][:200] if reasons else type(exc).__name__


def split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A tensor is one positional input, a tuple/list positional inputs, a dict keywords."""
    if isinstance(inputs, dict):
        bad = [k for k in inputs if not isinstance(k, str) or not k.isidentifier()]
        if bad:
            raise UsageError(
                f"the sample input is a dict, so its keys are forward()'s keyword arguments, "
                f"but {str(bad[:3])[1:-1][:80]} cannot be a parameter name: return a tuple for "
                "positional inputs, or a dict of names"
            )
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def to_device(value: Any, device: torch.device, moved: dict[int, Any] | None = None) -> Any:
    """Tensors moved to ``device``; a tensor given twice, or a view of another, stays shared
    (memory counts it once, as on the device it was built on)."""
    moved = {} if moved is None else moved
    if isinstance(value, torch.Tensor):
        if id(value) not in moved:
            moved[id(value)] = _moved(value, device, moved)
        return moved[id(value)]
    if isinstance(value, dict):
        return {k: to_device(v, device, moved) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device, moved) for v in value)
    return value


def _moved(t: torch.Tensor, device: torch.device, moved: dict[int, Any]) -> torch.Tensor:
    base = t._base
    if base is None or t.device == device or base.layout != torch.strided:
        return t.to(device)
    return to_device(base, device, moved).as_strided(t.shape, t.stride(), t.storage_offset())


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: _cast_floats(v, dtype) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_cast_floats(v, dtype) for v in value)
    return value


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v) for v in value)
    return False


def _optional_callable(namespace: dict[str, Any], name: str) -> Callable[..., Any] | None:
    value = namespace.get(name)
    return value if callable(value) else None


def _describe(exc: BaseException) -> str:
    """'Type: first line', and the root of its chain when another exception is behind it
    (a lazy import's ModuleNotFoundError raised from the real error)."""
    root = import_errors.root_cause(exc)
    caused = f" (behind it: {import_errors.type_and_message(root)})" if root is not exc else ""
    return import_errors.type_and_message(exc) + caused


def _where(exc: BaseException, path: Path) -> str:
    """'line N: ' for the deepest frame inside the model file, if any."""
    frame = import_errors.model_frame(exc, path)
    return f"line {frame.lineno}: " if frame else ""


def _first(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
