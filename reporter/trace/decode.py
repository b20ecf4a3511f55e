"""The one trace decoder: msgspec turns the JSON into slim typed events (``Event``).

Why: on a 216k-event trace ``json.loads`` alone takes 0.6 s on an idle core (2 s on a
busy one) and builds ~250 MB of dicts, most of them ``args`` this analysis never reads.
msgspec parses the same bytes into structs holding only the fields below in about a third
of the time and two thirds of the memory, skipping every other field in C. The structs
then go through ``events.normalise``, the one pass that makes the records.

Text msgspec does not parse (NaN or Infinity literals, which Python's json writes; a
truncated or corrupt file) is read by the stdlib json, which also words the error, and
its objects are converted into the same structs (``from_objects``): one set of structs,
one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from reporter.trace.events import TraceEvents, normalise

# Every field is Any: a trace with an odd value (a string ts, a numeric name) decodes
# anyway and is checked in events.normalise.


class Args(msgspec.Struct, gc=False):
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
    # cpu_ops only: torch.profiler's with_flops and record_shapes (see events.OpShapes)
    flops: Any = None
    input_dims: Any = msgspec.field(default=None, name="Input Dims")
    input_type: Any = msgspec.field(default=None, name="Input type")


class Event(msgspec.Struct, gc=False):
    ph: Any = None
    cat: Any = ""
    name: Any = ""
    pid: Any = None
    tid: Any = None
    ts: Any = None
    dur: Any = 0
    id: Any = None
    args: Args | None = None


class Trace(msgspec.Struct, gc=False):
    traceEvents: list[Event] | None = None  # noqa: N815 (the JSON key)
    deviceProperties: Any = None  # noqa: N815
    distributedInfo: Any = None  # noqa: N815


class RawTrace(msgspec.Struct, gc=False):
    """A trace's events left encoded: each Raw is a 48-byte view of the text."""

    traceEvents: list[msgspec.Raw] | None = None  # noqa: N815 (the JSON key)
    deviceProperties: Any = None  # noqa: N815
    distributedInfo: Any = None  # noqa: N815


_DECODER = msgspec.json.Decoder(Trace)
_RAW_DECODER = msgspec.json.Decoder(RawTrace)
_EVENTS_DECODER = msgspec.json.Decoder(list[Event])
_EVENT_DECODER = msgspec.json.Decoder(Event)
_INVALID = (msgspec.DecodeError, msgspec.ValidationError)

# Above this much JSON text the events are decoded in batches (BATCH events at a time)
# and turned into records batch by batch: the decoded structs of a whole trace take
# ~500 bytes an event (500 MB for 1 M events), a batch's a few MB. Smaller traces are
# decoded in one call, which is faster.
LARGE_TRACE_BYTES = 48 << 20
BATCH = 20_000


def decode(raw: bytes | bytearray) -> Trace | RawTrace | None:
    """The decoded trace (only the fields the analysis reads), or None when msgspec cannot
    parse the text or it has no traceEvents list (the caller then reads it with the stdlib
    json, which words the error or accepts the NaN literals msgspec refuses).

    A trace with an event that is not an object is decoded event by event (RawTrace):
    that event is skipped.
    """
    try:
        if len(raw) < LARGE_TRACE_BYTES:
            try:
                doc: Trace | RawTrace = _DECODER.decode(raw)
            except msgspec.ValidationError:
                doc = _RAW_DECODER.decode(raw)
        else:
            doc = _RAW_DECODER.decode(raw)
    except _INVALID:
        return None
    return doc if doc.traceEvents is not None else None


def from_objects(events: list[Any], meta: dict[str, Any]) -> Trace:
    """The decoded trace from parsed JSON (events and top-level metadata): the same
    structs msgspec decodes; an event that does not fit (not an object) is skipped."""
    try:
        decoded = msgspec.convert(events, list[Event])
    except msgspec.ValidationError:
        decoded = []
        for e in events:
            try:
                decoded.append(msgspec.convert(e, Event))
            except msgspec.ValidationError:
                continue
    return Trace(decoded, meta.get("deviceProperties"), meta.get("distributedInfo"))


def records(doc: Trace | RawTrace, source: str, count: int | None = None) -> TraceEvents:
    """The records of a decoded trace; ``count``: the events in the file, where some did
    not fit the structs (``from_objects``)."""
    meta = {"deviceProperties": doc.deviceProperties, "distributedInfo": doc.distributedInfo}
    events = doc.traceEvents
    if not isinstance(doc, RawTrace) or events is None:
        return normalise(events or [], meta, source, count)
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

    return normalise(batches, meta, source, count, flow_source=flows, release=release)


def _batches(raws: list[Any], flow_raws: list[Any]) -> Iterator[Event]:
    """The events decoded BATCH at a time; an event that is not an object is skipped.
    Each batch's encoded events are dropped once decoded, except the ac2g flows, which
    go to ``flow_raws``."""
    for i in range(0, len(raws), BATCH):
        part = raws[i : i + BATCH]
        raws[i : i + BATCH] = [None] * len(part)  # the Raws go with ``part``
        try:
            decoded = _EVENTS_DECODER.decode(b"[" + b",".join(part) + b"]")
        except _INVALID:
            decoded = []
            kept = []
            for one in part:
                try:
                    decoded.append(_EVENT_DECODER.decode(one))
                    kept.append(one)
                except _INVALID:
                    continue
            part = kept
        for raw, e in zip(part, decoded, strict=True):
            if (e.ph == "s" or e.ph == "f") and e.cat == "ac2g":
                flow_raws.append(raw)
        del part
        yield from decoded
