"""Instrumented passes over the model, shared by the static stages.

The inference pass runs torchinfo's forward once, inside FlopCounterMode and a tracker of
live tensor bytes, so `--only summary,flops` runs the model exactly once. The training
pass (forward with autograd + backward) is run only when a stage asks for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import warnings
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torchinfo
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode

from reporter import forked, meta_attention
from reporter.flop_attribution import BackwardAttribution
from reporter.flop_formulas import FlopCounter
from reporter.forward_guard import ForwardError, locate_failures
from reporter.graph.record import recording
from reporter.stages.context import StageContext
from reporter.tensors import tensors_in

# Ops that only view, copy or index memory: no arithmetic.
DATA_MOVEMENT = frozenset(
    "aten." + name
    for name in [
        "detach",
        "view",
        "_unsafe_view",
        "reshape",
        "t",
        "transpose",
        "permute",
        "expand",
        "slice",
        "select",
        "split",
        "split_with_sizes",
        "unsqueeze",
        "squeeze",
        "flatten",
        "clone",
        "copy_",
        "contiguous",
        "_to_copy",
        "to",
        "empty",
        "empty_like",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "arange",
        "cat",
        "stack",
        "index",
        "index_select",
        "embedding",
        "gather",
        "scatter",
        "masked_fill",
        "fill_",
        "zero_",
        "alias",
        "lift_fresh",
        "unbind",
        "chunk",
        "narrow",
        "as_strided",
        "new_empty",
        "new_zeros",
        "_reshape_alias",
    ]
)


SOFTMAX_OPS = frozenset({"aten._softmax", "aten._log_softmax", "aten.softmax", "aten.log_softmax"})


class LiveTensorTracker(TorchDispatchMode):
    """Counts bytes of storages created inside the mode while they are alive.

    A storage counts once however many views share it; it stops counting when the last
    tensor that the mode saw on it is garbage collected. Storages that existed before
    (parameters, inputs) are not counted, views of them neither.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage id -> [bytes, tensors alive]
        self.current = 0
        self.peak = 0
        self.ops: Counter[str] = Counter()
        self.last_op = ""  # the last op that computed something
        self.softmax_outputs: set[int] = set()  # storages written by (log_)softmax
        self.softmax_inputs: set[int] = set()  # storages read by (log_)softmax
        self.read: set[int] = set()  # every storage an op read

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket)
        self.ops[name] += 1
        if name not in DATA_MOVEMENT:
            self.last_op = name
        inputs = {_storage_key(t) for t in _dense((args, kwargs))}
        self.read |= inputs
        outputs = _dense(out)
        if name in SOFTMAX_OPS:
            self.softmax_inputs |= inputs
            self.softmax_outputs |= {_storage_key(t) for t in outputs}
        for t in outputs:
            self._track(t, inputs)
        return out

    def _track(self, t: torch.Tensor, inputs: set[int]) -> None:
        key = _storage_key(t)
        if key in self.live:
            self.live[key][1] += 1
        elif key in inputs:
            return  # a view or in-place result on memory that existed before
        else:
            nbytes = t.untyped_storage().nbytes()
            self.live[key] = [nbytes, 1]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]


def _dense(value: Any) -> list[torch.Tensor]:
    """Strided tensors in an op's arguments or result (sparse ones have no one storage)."""
    return [t for t in tensors_in(value) if t.layout == torch.strided]


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


@dataclass
class InferencePass:
    stats: Any  # torchinfo.ModelStatistics
    flop_counts: dict[str, dict[str, int]]  # FlopCounterMode's, by module then op
    flops_total: int
    ops: Counter[str]
    activation_peak_bytes: int
    output: Any
    final_op: str = ""
    # SDPA kernels run causal or with a mask: their FLOPs over all query-key pairs less
    # those over the pairs let through (flop_formulas.MaskedAttention), and which ran
    causal_saved: int = 0
    causal_ops: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recording: Any = None  # the graph stage's reporter.graph.record.Recording, when wanted


@dataclass
class TrainingPass:
    # FLOPs counted while loss.backward() ran, by module then op (FlopCounterMode's keys;
    # a module holds the work of the nodes its forward created, its children's included)
    backward_flop_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    backward_flops_total: int = 0
    backward_causal_saved: int = 0  # as InferencePass.causal_saved, while backward ran
    backward_causal_ops: list[str] = field(default_factory=list)
    saved_activation_bytes: int = 0
    peak_forward_bytes: int = 0
    ran_backward: bool = False
    note: str = ""
    params_without_grad: list[str] = field(default_factory=list)
    loss_ops: list[str] = field(default_factory=list)
    softmax_twice: bool = False  # the loss (log-)softmaxes a (log-)softmax output of the model
    mode: str = "train"  # "eval" when the pass raised in train mode and ran in eval
    params_not_read: list[str] = field(default_factory=list)  # no op read them in the forward


def inference_pass(ctx: StageContext) -> InferencePass:
    return ctx.shared("inference_pass", lambda: _run_inference_pass(ctx))


def training_pass(ctx: StageContext) -> TrainingPass:
    return ctx.shared("training_pass", lambda: _forked_result(ctx) or _run_training_pass(ctx))


def _start_training_pass_beside(ctx: StageContext) -> None:
    """On the meta device, start the training pass in a forked child now, so that it runs
    on the second core while this process runs the inference pass (70B: 1.5 s of 4.7 s).
    """
    opts = ctx.options
    needed = "memory" in opts.stages or (opts.train and "flops" in opts.stages)
    if ctx.subject.device.type == "meta" and needed and "training_pass" not in ctx.cache:
        ctx.cache["training_pass_fork"] = forked.start(
            lambda: dataclasses.asdict(_run_training_pass(ctx)), "training_pass"
        )


def _forked_result(ctx: StageContext) -> TrainingPass | None:
    """The forked child's training pass; None without one or when it failed (the pass
    then runs here, and raises here if it fails again)."""
    child = ctx.cache.pop("training_pass_fork", None)
    data = forked.result(child) if child is not None else None
    return TrainingPass(**data) if data is not None else None


DYNAMO_MARK = "__dynamo_disable"  # the attribute torch._compile._disable_dynamo caches


@contextlib.contextmanager
def without_dynamo_import() -> Iterator[None]:
    """Keep the dispatch modes of a pass from importing torch._dynamo (1.5-2.4 s here).

    torch wraps every TorchDispatchMode's handler in ``torch._disable_dynamo``, whose first
    call imports dynamo only to mark the handler as not to be compiled. While dynamo is
    not imported nothing can be compiling, so the mark has no effect: for the pass the
    handler is given itself as its marked form, and the mark is taken off afterwards.
    """
    if "torch._dynamo" in sys.modules:
        yield
        return
    handlers = [
        getattr(mode.__torch_dispatch__, "__wrapped__", None)
        for mode in (_FlopCounterMode, LiveTensorTracker)
    ]
    marked = [h for h in handlers if h is not None and not hasattr(h, DYNAMO_MARK)]
    for handler in marked:
        setattr(handler, DYNAMO_MARK, handler)
    try:
        yield
    finally:
        for handler in marked:
            if handler.__dict__.get(DYNAMO_MARK) is handler:
                delattr(handler, DYNAMO_MARK)


def counting_flops() -> FlopCounter:
    """FlopCounterMode with perfreport's formulas for the ops it lacks (flop_formulas.py)."""
    return FlopCounter()


def _run_inference_pass(ctx: StageContext) -> InferencePass:
    from reporter.stages import graph

    _start_training_pass_beside(ctx)
    if graph.wanted(ctx):
        # The graph is recorded during this forward rather than in one more of its own.
        try:
            return _inference_forward(ctx, record_graph=True)
        except ForwardError:
            raise
        except Exception:  # noqa: BLE001 - the recorder must never cost the summary
            pass  # the same pass again without it; the graph stage then records alone
    return _inference_forward(ctx, record_graph=False)


def _inference_forward(ctx: StageContext, record_graph: bool) -> InferencePass:
    subject = ctx.subject
    model = subject.model
    captured: dict[str, Any] = {}

    def keep_output(module: Any, args: Any, output: Any) -> Any:
        captured["output"] = output
        # torchinfo sizes tensors, lists, tuples and dicts only: show it a dataclass's fields.
        if dataclasses.is_dataclass(output) and not isinstance(output, dict):
            return {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
        return None

    handle = model.register_forward_hook(keep_output)
    tracker = LiveTensorTracker()
    recorder = recording(model, subject.args, subject.kwargs) if record_graph else None
    # FlopCounterMode counts nothing under inference_mode (pytorch#126268); torchinfo runs
    # the forward under no_grad, which it counts correctly.
    try:
        with (
            meta_attention.on_meta(
                subject.device, subject.attention_padding
            ),  # outside the recorder: it sees SDPA
            recorder or contextlib.nullcontext() as finish,
            without_dynamo_import(),
            warnings.catch_warnings(record=True) as caught,
            locate_failures(model),
            counting_flops() as counter,
            tracker,
        ):
            warnings.simplefilter("always")
            stats = torchinfo.summary(
                model,
                input_data=_torchinfo_input(subject.args, subject.kwargs),
                depth=max(ctx.options.depth, 1),
                device=subject.device,
                verbose=0,
                col_names=("output_size", "num_params", "trainable"),
                cache_forward_pass=False,
                **(subject.kwargs if subject.args else {}),
            )
            activation_peak = tracker.peak
    except RuntimeError as exc:
        # torchinfo wraps the model's own error; show that one.
        raise (exc.__cause__ or exc) from None
    finally:
        handle.remove()
    return InferencePass(
        stats=stats,
        flop_counts=counter.get_flop_counts(),
        flops_total=counter.get_total_flops(),
        ops=tracker.ops,
        activation_peak_bytes=activation_peak,
        output=captured.get("output"),
        final_op=tracker.last_op,
        causal_saved=counter.masked.saved,
        causal_ops=sorted(counter.masked.ops),
        warnings=_warning_lines(caught),
        recording=finish(captured.get("output")) if finish is not None else None,
    )


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """Distinct warnings raised while the forward ran, as 'Category: message'."""
    lines = [f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught]
    return list(dict.fromkeys(line for line in lines if "torchinfo" not in line))


def _torchinfo_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return list(args) if args else dict(kwargs)


def _run_training_pass(ctx: StageContext) -> TrainingPass:
    """The training pass in train mode, as a training step runs (dropout keeps its masks
    for backward, batch norm its batch statistics); in eval mode, with a note, when the
    pass fails in train mode only (batch norm on a batch of one)."""
    model = ctx.subject.model
    try:
        with train_mode(model):
            return _training_pass(ctx)
    except Exception as exc:  # noqa: BLE001 - a model failing in eval too raises below
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    result = _training_pass(ctx)
    result.mode = "eval"
    notes = [f"ran in eval mode: in train mode the pass raised {why}", result.note]
    result.note = "; ".join(n for n in notes if n)
    return result


@contextlib.contextmanager
def train_mode(model: torch.nn.Module) -> Iterator[None]:
    """model.train() for the pass; every module's mode and every buffer (batch-norm
    running statistics and counters) put back afterwards, so the analysed model is
    unchanged."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = {name: b.clone() for name, b in model.named_buffers()}  # meta: no data
    model.train()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers and b.shape == buffers[name].shape:
                    b.copy_(buffers[name])


def _training_pass(ctx: StageContext) -> TrainingPass:
    """Forward with autograd, then backward of the loss, counting FLOPs and saved tensors."""
    subject = ctx.subject
    model = subject.model
    result = TrainingPass()
    saved: dict[int, int] = {}
    known = {_storage_key(p) for p in model.parameters()} | {
        _storage_key(b) for b in model.buffers()
    }

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in known and t.layout == torch.strided:
            saved[key] = t.untyped_storage().nbytes()
        return t

    tracker = LiveTensorTracker()
    # Meta kernels run in Python: backward would double the time of a large model, and
    # without it the counts would only repeat the inference pass's, so skip counting too.
    skip_backward = subject.device.type == "meta" and not ctx.options.train
    counter = None if skip_backward else counting_flops()
    # The counter spans the forward too: FlopCounterMode's own module tracking leaks during
    # backward, so the modules are known from the autograd nodes the forward creates.
    attribution = BackwardAttribution(model, counter) if counter is not None else None
    try:
        with (
            without_dynamo_import(),
            meta_attention.on_meta(subject.device, subject.attention_padding),
            torch.enable_grad(),
            counter or contextlib.nullcontext(),
        ):
            with locate_failures(model), torch.autograd.graph.saved_tensors_hooks(pack, _same):
                with tracker, attribution.recording() if attribution else contextlib.nullcontext():
                    output = subject.call()
                result.peak_forward_bytes = tracker.peak
            loss_tracker = LiveTensorTracker()
            with loss_tracker:
                loss = training_loss(subject, output)
            result.loss_ops = sorted(op for op in loss_tracker.ops if op not in DATA_MOVEMENT)
            result.softmax_twice = bool(tracker.softmax_outputs & loss_tracker.softmax_inputs)
            if loss is None or not loss.requires_grad:
                result.note = "no output needs a gradient, so backward was not run"
            elif counter is None:
                result.note = "backward was not run on the meta device (pass --train to count it)"
            else:
                before = _named_counts(counter)
                masked_before, counter.masked.ops = counter.masked.saved, set()
                attribution.watch(loss)
                loss.backward()
                result.backward_causal_saved = counter.masked.saved - masked_before
                result.backward_causal_ops = sorted(counter.masked.ops)
                result.ran_backward = True
                added = _added(before, _named_counts(counter))["Global"]
                result.backward_flop_counts = attribution.counts(added)
                result.backward_flops_total = sum(added.values())
        if result.ran_backward:
            result.params_without_grad = [
                n for n, p in model.named_parameters() if p.requires_grad and p.grad is None
            ]
            result.params_not_read = [
                n
                for n, p in model.named_parameters()
                if p.requires_grad and p.grad is None and _storage_key(p) not in tracker.read
            ]
    finally:
        for p in model.parameters():
            p.grad = None
    result.saved_activation_bytes = sum(saved.values())
    return result


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _named_counts(counter: FlopCounterMode) -> dict[str, dict[str, int]]:
    """The counts so far, by module then op name: names, not torch's op objects, since
    the result may cross a pipe as JSON (forked)."""
    counts = counter.get_flop_counts()
    return {m: {str(op): n for op, n in ops.items()} for m, ops in counts.items()}


def _added(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """What was counted between two snapshots, by module then op; "Global" always there."""
    out: dict[str, dict[str, int]] = {"Global": {}}
    for module, ops in after.items():
        old = before.get(module, {})
        grown = {op: n - old.get(op, 0) for op, n in ops.items() if n > old.get(op, 0)}
        if grown:
            out[module] = grown
    return out


def training_loss(subject: Any, output: Any) -> torch.Tensor | None:
    """The file's loss_fn(output, inputs), else the mean of every floating output summed."""
    if subject.loss_fn is not None:
        return subject.loss_fn(output, subject.inputs)
    floats = [t for t in tensors_in(output) if t.is_floating_point() and t.requires_grad]
    if not floats:
        return None
    return torch.stack([t.float().mean() for t in floats]).sum()
