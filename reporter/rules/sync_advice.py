"""Advice for host-device synchronisations, chosen from the ops that synchronised.

A sync has several causes that need different fixes: a data-dependent shape (nonzero,
boolean-mask indexing, masked_select, unique) cannot be cured by "keep values on the
device", and an `.item()` read inside a Python loop needs vectorising, not logging less.
The profile and the trace name the ops; this module maps them to a cause and its fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Ops whose output size depends on the data: the host must learn the size before it can
# allocate the result, so it waits for the device.
DATA_DEPENDENT = frozenset(
    {
        "aten::nonzero",
        "aten::nonzero_numpy",
        "aten::masked_select",
        "aten::unique",
        "aten::_unique",
        "aten::_unique2",
        "aten::unique_dim",
        "aten::unique_consecutive",
        "aten::argwhere",
    }
)
SCALAR_READS = frozenset({"aten::item", "aten::_local_scalar_dense"})
TRUTH_TESTS = frozenset({"aten::is_nonzero"})  # bool(t): `if t:`, `assert t`, `and`/`or`
READ_CHAIN = ("aten::_local_scalar_dense", "aten::item", "aten::is_nonzero")
COPIES = frozenset({"DtoH copy", "aten::_to_copy", "aten::to", "aten::copy_", "aten::cpu"})
EXPLICIT = frozenset({"cudaDeviceSynchronize"})
# Scalar reads per step above this come from a loop, not from one check.
LOOP_CALLS = 4


@dataclass(frozen=True)
class SyncAdvice:
    cause: str  # short label for titles and evidence
    recommendation: str
    snippet: str


def sync_advice(
    ops: Iterable[tuple[str, int]], *, hf_without_mask: bool = False, dtoh_copies: bool = False
) -> SyncAdvice:
    """The advice for the syncing ops (name, calls per step), the most specific cause first.

    ``hf_without_mask``: the inputs hold ``input_ids`` and no ``attention_mask``, so a
    Hugging Face model runs its padding check (``pad_token_id in input_ids``: one .item()).
    ``dtoh_copies``: device-to-host copies were seen (a .cpu()/.tolist()/.numpy()).
    """
    calls = dict(ops)
    names = set(calls)
    if names & DATA_DEPENDENT:
        which = ", ".join(sorted(names & DATA_DEPENDENT))
        masked = "aten::index" in names or "aten::masked_select" in names
        return SyncAdvice(
            cause=f"data-dependent shapes ({which}"
            + (", from boolean-mask indexing" if masked else "")
            + ")",
            recommendation=(
                f"{which} produce a result whose size depends on the data, so the host "
                "waits for the device to learn it"
                + (" (x[mask] runs nonzero on the mask)" if masked else "")
                + ". Keep shapes static: select with torch.where or masked_fill instead of "
                "indexing by a mask, take a fixed number of candidates with topk, or give "
                "the largest size with torch.nonzero_static(size=...). Where a variable "
                "size is needed (detection post-processing), do it once per step, after "
                "the heavy layers."
            ),
            snippet=(
                "x = torch.where(mask, x, torch.zeros_like(x))  # instead of x[mask]\n"
                "idx = torch.nonzero_static(mask.flatten(), size=k, fill_value=-1)"
            ),
        )
    # Every scalar read ends in _local_scalar_dense (bool(t) calls item, item calls it):
    # count the innermost one present, not their sum.
    reads = next((calls[n] for n in READ_CHAIN if calls.get(n)), 0)
    tests = calls.get("aten::is_nonzero", 0)
    if reads and hf_without_mask and reads <= 2:
        return SyncAdvice(
            cause="the padding check of a Hugging Face model called without attention_mask",
            recommendation=(
                "Called with input_ids and no attention_mask, a Hugging Face model checks "
                "whether the input holds padding (pad_token_id in input_ids), which reads "
                "a value back from the device on every forward. Pass the attention mask."
            ),
            snippet="out = model(input_ids=ids, attention_mask=torch.ones_like(ids))",
        )
    if tests and 2 * tests >= reads:
        return SyncAdvice(
            cause="a Python condition on a tensor value (bool(tensor))",
            recommendation=(
                "`if tensor:`, `assert (x > 0).all()` or `x in t` read a value back from the "
                "device to decide in Python. Compute both branches and select with "
                "torch.where, or move the check out of the step (validate once, or every N "
                "steps)."
            ),
            snippet="y = torch.where(cond, a, b)  # instead of: y = a if cond else b",
        )
    if reads > LOOP_CALLS:
        return SyncAdvice(
            cause=f".item() in a loop ({reads} reads per step)",
            recommendation=(
                f"{reads} scalar reads per step: a Python loop reads one value at a time, "
                "each a full host-device round trip. Vectorise the loop into tensor ops, or "
                "collect the values in a tensor and read it once (.tolist() after the loop)."
            ),
            snippet="values = torch.stack(per_item)  # one tensor, no sync\n"
            "result = values.tolist()  # one read, after the loop",
        )
    if reads:
        return SyncAdvice(
            cause=".item() / float() / int() on a device tensor",
            recommendation=(
                "Keep values on the device: accumulate losses and metrics as tensors and "
                "read them (.item(), print) every N steps only."
            ),
            snippet="loss_sum += loss.detach()  # instead of loss.item() every step\n"
            "if step % 100 == 0:\n    print(loss_sum.item() / 100); loss_sum.zero_()",
        )
    if dtoh_copies or names & COPIES:
        return SyncAdvice(
            cause="copies to the host (.cpu(), .tolist(), .numpy())",
            recommendation=(
                "Results copied to the host wait for the device. Keep them on the device "
                "until the end of the step, copy whole tensors once (not element by "
                "element with .tolist()), and use non_blocking=True into pinned memory "
                "with one synchronisation where the values are needed."
            ),
            snippet="host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)\n"
            "host.copy_(y, non_blocking=True)  # synchronise once, where it is read",
        )
    if names & EXPLICIT:
        return SyncAdvice(
            cause="explicit torch.cuda.synchronize()",
            recommendation=(
                "torch.cuda.synchronize() inside the step drains the launch queue. Remove "
                "it, and time with CUDA events (elapsed_time) instead."
            ),
            snippet="start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))\n"
            "start.record(); y = model(x); end.record()",
        )
    if "cudaEventSynchronize" in names:
        return SyncAdvice(
            cause="waits on CUDA events (event.synchronize(), or a library such as DDP "
            "waiting for its own work)",
            recommendation=(
                "The host waits on a CUDA event. In your own code, make the consuming stream "
                "wait instead (stream.wait_event(event)) so the host never blocks; inside a "
                "library, check the caller shown in the evidence and the library's "
                "overlap settings."
            ),
            snippet="torch.cuda.current_stream().wait_event(event)  # not event.synchronize()",
        )
    return SyncAdvice(
        cause="stream synchronisation",
        recommendation=(
            "Keep values on the device inside the step and read them every N steps only; "
            "copy results with non_blocking=True into pinned memory."
        ),
        snippet="loss_sum += loss.detach()  # instead of loss.item() every step",
    )
