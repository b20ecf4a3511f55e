"""One rank of a multi-process run: `python -P -m torch.distributed.run ... --no-python python -P -u -m reporter.distributed.rank_main OPTIONS.json`.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables. Each rank loads the
model file, wraps the model in DDP (or FSDP), runs a few training steps under torch.profiler
and writes its own Kineto trace (``rank<N>`` in the file name, ``distributedInfo`` inside).
Its facts go to ``<status dir>/rank<N>.jsonl`` through reporter.child's event channel, one
line per change, so the launcher still knows how far a rank got when another one crashes
or hangs. Tests make a rank slow, crash or hang with ``PERFREPORT_FAULT=rank<N>.step[.<S>]:KIND``
(e.g. ``rank1.step:sleep=0.2``: rank 1 sleeps 0.2 s in every step).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from reporter import child, lifetime

SLEEP_RANGE = "perfreport.injected_sleep"  # record_function name of an injected fault
STEP_RANGE = "perfreport.train_step"


class StatusFile:
    """This rank's facts: each change appended as one ``status`` event, read back by
    folding the events in order (a line torn by a crash is dropped, the ones before stand)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.events = child.EventWriter.append_to(path)
        self.update(**data)

    def update(self, **changes: Any) -> None:
        self.events.emit("status", **changes)


def main(argv: list[str]) -> int:
    # torchrun starts each rank in a session of its own: the rank ends with torchrun, which
    # ends with perfreport (distributed/guarded_run.py).
    lifetime.die_with_parent()
    from reporter.options import RunOptions
    from reporter.report import from_data

    options = from_data(RunOptions, json.loads(Path(argv[0]).read_text()))
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    status_dir = Path(options.stage_option("distributed", "status_dir"))
    status = StatusFile(
        status_dir / f"rank{rank}.jsonl",
        {
            "rank": rank,
            "local_rank": local_rank,
            "world_size": world,
            "host": os.uname().nodename,
            "pid": os.getpid(),
            "state": "starting",
            "phase": "init",
            "step": -1,
            "step_seconds": [],
        },
    )

    def on_term(signum: int, frame: Any) -> None:
        # torchrun stops the surviving ranks with SIGTERM when one fails: say so, then go.
        status.update(state="terminated", error=f"stopped by {child.signal_name(signum)}")
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        facts = run_rank(options, rank, world, local_rank, status)
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded for the report
        lines = str(exc).strip().splitlines()
        status.update(
            state="failed",
            error=f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__,
            error_type=type(exc).__name__,
            message=str(exc),
            detail=traceback.format_exc(),
        )
        return 1
    status.update(state="done", **facts)
    return 0


def run_rank(
    options: Any, rank: int, world: int, local_rank: int, status: StatusFile
) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    cuda = options.device.startswith("cuda")
    if cuda:
        # One GPU per local rank; nccl needs the current device set before init.
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but this rank sees no CUDA device")
        torch.cuda.set_device(local_rank)
        options.device = f"cuda:{local_rank}"
    backend = "nccl" if cuda else "gloo"
    timeout = float(options.stage_option("distributed", "collective_timeout", 600.0))
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout))
    try:
        status.update(state="running", phase="load", backend=backend)
        return _train_and_profile(options, rank, world, backend, status)
    finally:
        dist.destroy_process_group()


def _train_and_profile(
    options: Any, rank: int, world: int, backend: str, status: StatusFile
) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    from reporter.loader import load_subject
    from reporter.profiling.options import profile_steps
    from reporter.stages.passes import training_loss

    # A different seed per rank gives each rank different random inputs (as data-parallel
    # shards would be); the wrapper makes the weights equal (DDP broadcasts rank 0's).
    base_seed = options.seed
    options.seed = base_seed + rank
    subject = load_subject(options)
    options.seed = base_seed
    if rank == 0:
        from reporter.environment import record_environment
        from reporter.model_info import describe_model
        from reporter.report import to_data

        status.update(
            model=to_data(describe_model(subject)),
            environment=to_data(record_environment(options, subject.device)),
        )
    device = subject.device
    if device.type == "meta":
        raise RuntimeError("the model is on the meta device: a training step needs real weights")
    wrapper = options.stage_option("distributed", "wrapper", "ddp")
    plain = subject.model.train()
    # FSDP shards the gradients: its check needs an unwrapped copy to compute local ones.
    reference = None
    if wrapper == "fsdp":
        # Unlike DDP, fully_shard does not broadcast: start every rank from rank 0's weights.
        for tensor in [*plain.parameters(), *plain.buffers()]:
            dist.broadcast(tensor.data, src=0)
        reference = copy.deepcopy(plain)
    model = _wrap(plain, wrapper, device)
    subject.model = model
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    status.update(phase="grad-check")
    check = _check_grads_allreduced(model, reference, subject, training_loss)
    optimizer.zero_grad(set_to_none=True)

    wait, warmup, active = profile_steps(options.stage_option("profile", "steps"))
    total = wait + warmup + active
    trace_dir = Path(options.out_dir) / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step_seconds: list[float] = []
    with profile(
        activities=activities,
        schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=1),
        on_trace_ready=tensorboard_trace_handler(str(trace_dir), worker_name=f"rank{rank}"),
        record_shapes=True,
        profile_memory=True,
    ) as prof:
        for step in range(total):
            status.update(step=step, phase="forward")
            fault = child.fault_at(f"rank{rank}.step.{step}")
            started = time.perf_counter()
            with record_function(STEP_RANGE):
                if fault is not None:  # inside the step: an injected sleep is a straggler
                    with record_function(SLEEP_RANGE):
                        fault.strike()
                output = subject.call()
                loss = training_loss(subject, output)
                status.update(phase="backward")
                loss.backward()  # DDP all-reduces the gradient buckets during backward
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            step_seconds.append(time.perf_counter() - started)
            status.update(step_seconds=step_seconds, phase="step done")
            prof.step()
    dist.barrier()  # every rank's trace is on disk before any rank reports done
    traces = sorted(str(p) for p in trace_dir.glob(f"rank{rank}.*.pt.trace.json*"))
    return {
        "phase": "finished",
        "backend": backend,
        "wrapper": wrapper,
        "device": str(device),
        "trace_files": traces,
        "profile_steps": [wait, warmup, active],
        **check,
    }


def _wrap(model: Any, wrapper: str, device: Any) -> Any:
    if wrapper == "fsdp":
        return _fully_shard(model)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def _fully_shard(model: Any) -> Any:
    """FSDP2 (``fully_shard``): works with gloo on CPU too, unlike FSDP1."""
    from torch.distributed.fsdp import fully_shard

    # One shard group per module that owns parameters, then the root: the usual layout.
    for module in list(model.modules())[1:]:
        if any(True for _ in module.parameters(recurse=False)):
            fully_shard(module)
    fully_shard(model)
    return model


def _check_grads_allreduced(
    model: Any, reference: Any, subject: Any, loss_of: Any
) -> dict[str, Any]:
    """Compare the wrapper's gradients with an average of the ranks' local gradients made here.

    DDP: under ``no_sync()`` the backward keeps each rank's local gradient. FSDP: an unwrapped
    copy of the (rank 0) weights, taken before sharding, gives it. All-reducing those by hand and dividing by the
    world size is what data parallelism must produce; the wrapper's normal backward on the
    same inputs has to match it on every rank.
    """
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    if reference is None:
        with model.no_sync():
            loss_of(subject, subject.call()).backward()
        local = _flat_grads(model)
        model.zero_grad(set_to_none=True)
    else:
        local_subject = copy.copy(subject)
        local_subject.model = reference
        loss_of(local_subject, local_subject.call()).backward()
        local = _flat_grads(reference)
    expected = local.clone()
    dist.all_reduce(expected)
    expected /= world
    loss_of(subject, subject.call()).backward()
    reduced = _flat_grads(model)  # FSDP2's sharded grads are gathered to full tensors
    norms = torch.stack([local.norm(), reduced.norm()]).double()
    gathered = [torch.zeros_like(norms) for _ in range(world)]
    dist.all_gather(gathered, norms)
    same_size = reduced.numel() == expected.numel() and reduced.numel() > 0
    rel = torch.tensor([float("inf")], dtype=torch.float64, device=norms.device)
    if same_size:
        scale = expected.abs().max().clamp_min(1e-12)
        rel[0] = float((reduced - expected).abs().max() / scale)
    dist.all_reduce(rel, op=dist.ReduceOp.MAX)
    local_norms = [float(g[0]) for g in gathered]
    reduced_norms = [float(g[1]) for g in gathered]
    top = max(max(reduced_norms), 1e-12)
    same = max(reduced_norms) - min(reduced_norms) <= 1e-5 * top
    return {
        "grad_elements": int(reduced.numel()),
        "grad_local_norms": local_norms,
        "grad_reduced_norms": reduced_norms,
        "grad_max_rel_diff": float(rel[0]),
        "grads_allreduced": bool(float(rel[0]) <= 1e-4 and same),
        "inputs_differ": max(local_norms) - min(local_norms) > 1e-6 * max(max(local_norms), 1e-12),
    }


def _flat_grads(model: Any) -> Any:
    """The gradients of the model's parameters as one float64 vector."""
    import torch

    grads = [
        _full(p.grad).detach().reshape(-1).double().cpu()
        for p in model.parameters()
        if p.grad is not None and p.grad.numel()
    ]
    if not grads:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat(grads)


def _full(grad: Any) -> Any:
    """A DTensor shard (FSDP2) gathered into the whole gradient; a plain tensor as it is."""
    return grad.full_tensor() if hasattr(grad, "full_tensor") else grad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
