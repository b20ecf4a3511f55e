"""Optional fast path: msgspec decodes the trace JSON straight into slim typed events.

Why: on a 216k-event trace ``json.loads`` alone takes 0.6 s on an idle core (2 s on a
busy one) and builds ~250 MB of dicts, most of them ``args`` this analysis never reads.
msgspec parses the same bytes into structs holding only the fields below in about a third
of the time and two thirds of the memory, skipping every other field in C. Without
msgspec installed, or for a file this schema does not fit (an event that is not an
object, say), ``read_events`` returns None and the stdlib path in events.normalise runs:
both give the same records (tests compare them on every shared trace).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from reporter.trace.events import (
    CALL_CATEGORIES,
    GPU_CATEGORY,
    HOST_CATEGORIES,
    HOST_CATEGORY,
    KERNEL,
    MAX_RELATIVE_US,
    OTHER_CATEGORY,
    PYTHON_FUNCTION,
    STEP_PREFIX,
    USER_ANNOTATION,
    Flow,
    HostEvent,
    Step,
    TraceEvents,
    _step_number,
    bad_event,
    finish,
    gpu_event,
    learn_category,
    memory_sample,
    read_meta,
    sm_fields,
)

try:
    import msgspec
except ImportError:  # the stdlib path does the same, slower
    msgspec = None

AVAILABLE = msgspec is not None

if msgspec is not None:
    # Every field is Any: a trace with an odd value (a string ts, a numeric name) decodes
    # anyway and is checked below as the stdlib path checks it.

    class _Args(msgspec.Struct, gc=False):
        correlation: Any = None
        device: Any = None
        stream: Any = None
        bytes: Any = None
        collective: Any = msgspec.field(default=None, name="Collective name")
        allocated: Any = msgspec.field(default=None, name="Total Allocated")
        reserved: Any = msgspec.field(default=None, name="Total Reserved")
        device_type: Any = msgspec.field(default=None, name="Device Type")
        device_id: Any = msgspec.field(default=0, name="Device Id")
        blocks_per_sm: Any = msgspec.field(default=None, name="blocks per SM")
        warps_per_sm: Any = msgspec.field(default=None, name="warps per SM")
        occupancy: Any = msgspec.field(default=None, name="est. achieved occupancy %")

    class _Event(msgspec.Struct, gc=False):
        ph: Any = None
        cat: Any = ""
        name: Any = ""
        pid: Any = None
        tid: Any = None
        ts: Any = None
        dur: Any = 0
        id: Any = None
        args: _Args | None = None

    class _Trace(msgspec.Struct, gc=False):
        traceEvents: list[_Event] | None = None  # noqa: N815 (the JSON key)
        deviceProperties: Any = None  # noqa: N815
        distributedInfo: Any = None  # noqa: N815

    _DECODER = msgspec.json.Decoder(_Trace)

    class _RawTrace(msgspec.Struct, gc=False):
        """A large trace's events left encoded: each Raw is a 48-byte view of the text."""

        traceEvents: list[msgspec.Raw] | None = None  # noqa: N815 (the JSON key)
        deviceProperties: Any = None  # noqa: N815
        distributedInfo: Any = None  # noqa: N815

    _RAW_DECODER = msgspec.json.Decoder(_RawTrace)
    _EVENTS_DECODER = msgspec.json.Decoder(list[_Event])
    _EVENT_DECODER = msgspec.json.Decoder(_Event)

# Above this much JSON text the events are decoded in batches (BATCH events at a time)
# and turned into records batch by batch: the decoded structs of a whole trace take
# ~500 bytes an event (500 MB for 1 M events), a batch's a few MB. Smaller traces are
# decoded in one call, which is faster.
LARGE_TRACE_BYTES = 48 << 20
BATCH = 20_000


def decode(raw: bytes) -> Any | None:
    """The decoded trace (a struct with only the fields the analysis reads), or None when
    msgspec is missing or the file does not fit (the caller then parses it with the
    stdlib, which also words any error)."""
    if msgspec is None:
        return None
    try:
        doc = (_RAW_DECODER if len(raw) >= LARGE_TRACE_BYTES else _DECODER).decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return doc if doc.traceEvents is not None else None


def records(doc: Any, source: str) -> TraceEvents:
    """The records of a trace that ``decode`` returned."""
    meta = {"deviceProperties": doc.deviceProperties, "distributedInfo": doc.distributedInfo}
    events = doc.traceEvents
    if not (events and isinstance(events[0], msgspec.Raw)):
        return normalise_structs(events, meta, source)
    # Only this function holds the encoded events (so the text they view): once the
    # launches are linked, release() drops them and the text goes.
    doc.traceEvents = None
    count = len(events)
    flow_raws: list[Any] = []  # the encoded ac2g flows, decoded again only if needed
    batches = _batches(events, flow_raws)
    del events

    def release() -> None:
        batches.close()
        flow_raws.clear()

    def flows() -> Iterator[Any]:
        return (_EVENT_DECODER.decode(r) for r in flow_raws)

    return normalise_structs(batches, meta, source, count, flow_source=flows, release=release)


def _batches(raws: list[Any], flow_raws: list[Any]) -> Iterator[Any]:
    """The events decoded BATCH at a time; an event that is not an object is skipped (as
    the stdlib path skips it). Each batch's encoded events are dropped once decoded,
    except the ac2g flows, which go to ``flow_raws``."""
    for i in range(0, len(raws), BATCH):
        part = raws[i : i + BATCH]
        raws[i : i + BATCH] = [None] * len(part)  # the Raws go with ``part``
        try:
            decoded = _EVENTS_DECODER.decode(b"[" + b",".join(part) + b"]")
        except (msgspec.DecodeError, msgspec.ValidationError):
            decoded = []
            kept = []
            for one in part:
                try:
                    decoded.append(_EVENT_DECODER.decode(one))
                    kept.append(one)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
            part = kept
        for raw, e in zip(part, decoded, strict=True):
            if (e.ph == "s" or e.ph == "f") and e.cat == "ac2g":
                flow_raws.append(raw)
        del part
        yield from decoded


def read_events(raw: bytes, source: str) -> TraceEvents | None:
    """Records from the JSON bytes, or None where ``decode`` gives None."""
    doc = decode(raw)
    return None if doc is None else records(doc, source)


def _time_base(events: Iterator[Any]) -> tuple[float, list[Any]]:
    """The time base (see events.time_base) and the events read to find it."""
    seen = []
    for e in events:
        seen.append(e)
        ts = e.ts
        if isinstance(ts, (int, float)) and math.isfinite(ts):
            return float(math.floor(ts)), seen
    return 0.0, seen


def normalise_structs(
    events: Iterable[Any],
    meta: dict[str, Any],
    source: str,
    count: int | None = None,
    flow_source: Callable[[], Iterator[Any]] | None = None,
    release: Callable[[], None] | None = None,
) -> TraceEvents:
    """events.normalise for decoded structs: the same records, by attribute instead of key.

    ``events`` is a list, or an iterator of ``count`` events (decoded batch by batch).
    With ``flow_source`` the ac2g flows are not kept while reading: it decodes them again
    if they are needed (see events.finish, which also calls ``release``).
    """
    if isinstance(events, list):
        count = len(events)
        base, _ = _time_base(iter(events))
    else:
        base, first = _time_base(events)
        events = chain(first, events)
    out = TraceEvents(source=source, event_count=count or 0)
    out.time_base_us = base
    read_meta(out, meta)
    thread_ids: dict[tuple[Any, Any], int] = {}
    host = out.host
    gpu = out.gpu
    steps = out.steps
    other = out.other_categories
    flow_events: list[Any] = []  # turned into Flows only if some op lacks an id
    collective_names: dict[str, bool] = {}
    # Once per event (200k+): module constants as locals, no helper calls on common paths.
    host_categories = dict(HOST_CATEGORY)  # per trace: learn_category adds spellings
    gpu_categories = dict(GPU_CATEGORY)
    others = dict(OTHER_CATEGORY)
    strings: dict[str, str] = {}  # each distinct name once (see HOST_CATEGORY)
    call_categories = CALL_CATEGORIES
    python_function = PYTHON_FUNCTION
    step_prefix = STEP_PREFIX
    by_cat = out.host_by_cat = {c: array("q") for c in HOST_CATEGORIES}
    for e in events:
        ph = e.ph
        if ph == "X":
            cat = e.cat
            if type(cat) is not str:
                cat = "" if cat is None else str(cat)
            try:
                ts = e.ts - base
                end = ts + e.dur
            except TypeError:
                if e.ts is not None:  # no timestamp at all: not a timed event
                    bad_event(out, e.name)
                continue
            # False for NaN in either, a negative duration, or an infinite timestamp.
            if not (ts <= end < MAX_RELATIVE_US and ts > -MAX_RELATIVE_US):
                bad_event(out, e.name)
                continue
            host_cat = host_categories.get(cat)
            if host_cat is None and cat not in gpu_categories and cat not in others:
                learn_category(cat, host_categories, gpu_categories, others)
                host_cat = host_categories.get(cat)
            if host_cat is not None:
                cat = host_cat
                key = (e.pid, e.tid)
                thread = thread_ids.get(key)
                if thread is None:
                    thread = thread_ids[key] = len(thread_ids)
                name = e.name
                if type(name) is not str:
                    name = str(name or "")
                name = strings.setdefault(name, name)
                if cat in call_categories:
                    by_cat[cat].append(len(host))
                    corr = e.args.correlation if e.args is not None else -1
                    host.append(
                        HostEvent(cat, name, thread, ts, end, corr if type(corr) is int else -1)
                    )
                else:
                    if cat != python_function and name.startswith(step_prefix):
                        steps.append(Step(name, _step_number(name), ts, end))
                        # PyTorch 1.8-1.9 wrote steps as ops: they are annotations.
                        cat = USER_ANNOTATION
                    by_cat[cat].append(len(host))
                    host.append(HostEvent(cat, name, thread, ts, end))
            elif cat in gpu_categories:
                cat = gpu_categories[cat]
                args = e.args
                name = e.name
                if type(name) is not str:
                    name = str(name or "")
                name = strings.setdefault(name, name)
                if args is None:
                    device, stream, corr, nbytes, tagged = e.pid, e.tid, None, 0, False
                else:
                    device = args.device if args.device is not None else e.pid
                    stream = args.stream if args.stream is not None else e.tid
                    corr, nbytes, tagged = args.correlation, args.bytes, args.collective is not None
                g = gpu_event(
                    cat, name, device, stream, ts, end, corr, nbytes, tagged, collective_names
                )
                if cat == KERNEL and args is not None:
                    g.sm = sm_fields(args.blocks_per_sm, args.warps_per_sm, args.occupancy)
                gpu.append(g)
            else:
                kind = others[cat]
                if kind == "cuda_sync":
                    out.gpu_sync_events[str(e.name)] += 1
                elif kind is None:
                    other[cat or "(no category)"] += 1
        elif ph == "s" or ph == "f":
            if e.cat == "ac2g" and flow_source is None:
                flow_events.append(e)
        elif ph == "i" and e.name == "[memory]" and e.args is not None:
            a = e.args
            sample = memory_sample(e.ts, base, a.allocated, a.reserved, a.device_type, a.device_id)
            if sample is not None:
                out.memory.append(sample)

    def flows() -> list[Flow]:
        found = flow_events if flow_source is None else flow_source()
        return [
            (e.ph, e.pid, e.tid, e.ts - base, e.id) for e in found if isinstance(e.ts, (int, float))
        ]

    finish(out, flows, thread_ids, release)
    return out
