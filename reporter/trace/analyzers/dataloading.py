"""Data loading: the time spent in DataLoader/DataPipe iteration, however recorded."""

from __future__ import annotations

from reporter.trace import intervals as iv
from reporter.trace.analyzers.names import NoCase
from reporter.trace.events import CPU_OP, PYTHON_FUNCTION, USER_ANNOTATION, TraceEvents

# DataLoader iteration however recorded: torch's "enumerate(DataLoader)#..__next__" and
# "enumerate(DataPipe)#.." ranges (user annotations, or cpu_op in older traces), their
# Python frames (dataloader.py, _next_data), and ranges users name after data loading.
_DATALOADER = NoCase(r"dataloader|datapipe|data_load|_next_data")


def is_dataloader(name: str) -> bool:
    return not name.startswith("aten::") and _DATALOADER.search(name)


def dataloader_intervals(ev: TraceEvents) -> list[iv.Interval]:
    """Ranges spent fetching data: DataLoader/DataPipe iteration or ranges naming data
    loading, whether recorded as annotations, Python frames or ops."""
    verdict: dict[str, bool] = {}  # names repeat: classify each once
    found = []
    for i in ev.of(USER_ANNOTATION, PYTHON_FUNCTION, CPU_OP):
        h = ev.host[i]
        hit = verdict.get(h.name)
        if hit is None:
            hit = verdict[h.name] = is_dataloader(h.name)
        if hit:
            found.append((h.start, h.end))
    return iv.merge(found)
