"""Python API for notebooks and scripts: ``reporter.analyze(model, *example_inputs, **options)``.

Options are the CLI's long flags with underscores, as in ``[tool.perfreport]``
(``skip=["profile", "timing"]``, ``device="cpu"``, ``train=True``, ``timeout=60``; see
reporter/option_schema.py); they go through the CLI's own parser, so each is checked
exactly as on the command line and a bad one raises ``UsageError``.

A model *file* runs in a child process, as with the CLI. A live ``nn.Module`` cannot: it
may hold hooks, lambdas or classes defined in a notebook cell, which pickle cannot send to
another process. Its stages therefore run in this process, each under the same guard as
in the model process (an exception or ``sys.exit`` fails that stage only), with the
timeout raised inside Python code. A crash of the interpreter itself (a segmentation
fault, the out-of-memory killer) is not survivable in-process: give the file path for that.
The module's modes, parameters, gradients, buffers and torch's random state are put back
afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reporter.errors import UsageError
from reporter.option_schema import RUN, find
from reporter.report import Report

LIVE_SOURCE = "<nn.Module passed to reporter.analyze>"
# Options that only make sense for a model file.
FILE_ONLY = ("model", "checkpoint")
# Output and console flags: report.save(dir, formats=...) writes the files.
NOT_IN_API = ("format", "pdf", "paper", "quiet", "debug", "fail_on")


def analyze(
    model: nn.Module | str | os.PathLike[str], /, *example_inputs: Any, **options: Any
) -> Report:
    """Analyse a live ``nn.Module`` (on ``example_inputs``) or a model file; return the
    Report with findings and budgets applied. ``report.save(dir)`` writes the files."""
    from reporter import cli

    argv = options_to_argv(options)
    if "out" not in options:  # where the stages put traces and graph files
        argv += ["--out", tempfile.mkdtemp(prefix="perfreport-")]
    if isinstance(model, nn.Module):
        bad = [name for name in FILE_ONLY if name in options]
        if bad:
            raise UsageError(f"{bad[0]}= needs a model file; with a live module, pass it prepared")
        run_options, args = cli.parse_run_options([LIVE_SOURCE, *argv], live=True)
        from reporter.distributed.run import spec_from_args

        if spec_from_args(args, run_options.timeout) is not None:
            raise UsageError("nproc_per_node= needs a model file: each rank loads it")
        settings = cli.settings_from_args(args, Path.cwd())  # checked before anything runs
        report = _analyze_module(model, example_inputs, run_options, options)
    elif isinstance(model, (str, os.PathLike)):
        if example_inputs:
            raise UsageError("a model file brings its own inputs: use input_shape= or input=")
        run_options, args = cli.parse_run_options([os.fspath(model), *argv])
        from reporter.distributed.run import spec_from_args

        spec = spec_from_args(args, run_options.timeout)  # nproc_per_node=: torchrun
        settings = cli.settings_from_args(args, Path(run_options.model_file).parent)
        report = cli.run_report(run_options, spec, args.wrapper)
    else:
        raise UsageError(
            f"analyze() takes an nn.Module or a model file path, not {type(model).__name__}"
        )
    cli.recolour_graph(report, run_options, Path(run_options.out_dir))
    cli.judge(report, settings)
    return report


def options_to_argv(options: dict[str, Any]) -> list[str]:
    """``skip=["profile"], train=True, timeout=60`` -> ``--skip profile --train --timeout 60``."""
    argv: list[str] = []
    for name, value in options.items():
        if name in NOT_IN_API:
            raise UsageError(
                f"{name}=: not an analyze() option (use report.save(dir, formats=...))"
            )
        option = find(name)  # model_name= for --model too
        if option is None or RUN not in option.commands:
            raise UsageError(
                f"analyze(): unknown option {name}= (options are the CLI's long flags)"
            )
        flag = option.flags[-1]
        if option.switches:  # ddp=True, or wrapper="fsdp"
            flag, value = _switch(option.switches, name, value)
        if option.kind is bool or option.switches:  # a switch: True turns it on
            if not isinstance(value, bool):
                raise UsageError(f"{name}={value!r}: give True or False")
            argv += [flag] if value else []
        elif option.repeat:
            values = value if _is_list_of_values(value) else [value]
            for item in values:
                argv += [flag, _text(item)]
        else:
            argv += [flag, _text(value)]
    return argv


def _switch(switches: Mapping[str, str], name: str, value: Any) -> tuple[str, Any]:
    """The flag of one of exclusive switches, and whether it is on."""
    if f"--{name}" in switches:
        return f"--{name}", value
    for flag, named in switches.items():
        if value == named:
            return flag, True
    raise UsageError(f"{name}={value!r}: give one of {', '.join(switches.values())}")


def _is_list_of_values(value: Any) -> bool:
    """[[8, 3, 224, 224], [8, 10]] or ["params=10M", ...]: several uses of a repeatable flag."""
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (list, tuple, str)) for v in value
    )


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple, torch.Size)):
        return ",".join(str(v) for v in value)
    return str(value)


# ------------------------------------------------------------------ a live module
def _analyze_module(
    model: nn.Module, inputs: tuple[Any, ...], run_options: Any, given: dict[str, Any]
) -> Report:
    from reporter.pipeline import new_run, read_events, report_of
    from reporter.worker import Events, run_subject

    if "device" not in given:
        run_options.device = str(_device_of(model))
    stream = io.BytesIO()
    run = new_run(run_options)
    with preserved_state(model), torch.random.fork_rng(devices=_cuda_devices(model)):
        try:
            with _deadline(run_options.timeout):
                subject = _subject(model, inputs, run_options, Events(stream))
                if subject is not None:
                    run_subject(subject, run_options, Events(stream))
        except _TimedOut:
            run.notes.append(f"timed out after {run_options.timeout:g} s (timeout=)")
    stream.seek(0)
    read_events(stream, run, lambda *_: None)
    report = report_of(run, who="the in-process run")
    if report.timing is not None:
        from reporter.profiling.stats import profiler_overhead

        report.timing.profiler_overhead = profiler_overhead(
            report.profile, report.timing.latency_ms.median
        )
    return report


def _subject(model: nn.Module, inputs: tuple[Any, ...], options: Any, events: Any) -> Any:
    """The Subject for a live module; a usage error becomes an event, as in the worker."""
    from reporter.loader import (
        find_inputs,
        parse_device,
        parse_dtype,
        split_inputs,
        to_device,
    )
    from reporter.preflight import check_integer_dtype
    from reporter.subject import Subject

    events.emit("stage_start", stage="load")
    try:
        device = parse_device(options.device)
        dtype = parse_dtype(options.dtype) if options.dtype else None
        note = check_integer_dtype(options.dtype, options.input_shapes) if dtype else None
        torch.manual_seed(options.seed)
        if inputs:
            value: Any = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], dict) else inputs
            found_by = "analyze() arguments"
        else:
            value, found_by = find_inputs({}, Path(LIVE_SOURCE), options, dtype)
    except UsageError as exc:
        events.emit("usage_error", message=str(exc))
        return None
    built_in_train_mode = model.training
    if dtype is not None and dtype.is_floating_point:
        model.to(dtype)  # put back afterwards by preserved_state
    model.to(device)
    model.eval()
    args, kwargs = to_device(split_inputs(value), device)
    return Subject(
        model=model,
        args=args,
        kwargs=kwargs,
        device=device,
        source=LIVE_SOURCE,
        name=type(model).__name__,
        found_by="analyze()",
        input_found_by=found_by,
        built_in_train_mode=built_in_train_mode,
        notes=[note] if note else [],
    )


def _device_of(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _cuda_devices(model: nn.Module) -> list[int]:
    device = _device_of(model)
    return [device.index or 0] if device.type == "cuda" else []


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Put back every module's mode, each parameter's tensor, requires_grad and gradient,
    and each buffer (object and values), whatever the stages did."""
    modes = [(m, m.training) for m in model.modules()]
    params = [
        (p, p.data, p.requires_grad, p.grad, _copy(p.grad)) for p in _unique(model.parameters())
    ]
    buffers = [(m, name, b, _copy(b)) for m in model.modules() for name, b in m._buffers.items()]
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        for p, data, requires_grad, grad, grad_values in params:
            if p.data is not data:
                p.data = data
            p.requires_grad_(requires_grad)
            p.grad = grad
            if grad is not None and grad_values is not None:
                with torch.no_grad():
                    grad.copy_(grad_values)  # a backward may have accumulated into it
        for module, name, b, saved in buffers:
            module._buffers[name] = b
            if b is not None and saved is not None:
                with torch.no_grad():
                    b.copy_(saved)


def _copy(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().clone()


def _unique(tensors: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    return list({id(t): t for t in tensors}.values())


class _TimedOut(BaseException):
    """Raised inside the running stage at the deadline. A BaseException, so the stage
    guard (which catches Exception) lets it end the run, as the timeout does to the
    model process."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """SIGALRM raises _TimedOut in Python code after `seconds` (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


__all__ = ["analyze", "options_to_argv", "preserved_state"]
