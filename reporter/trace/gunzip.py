"""Gzip decompression that stops past a size no trace can have (a gzip bomb).

23 MB of gzip can expand to 5 GiB; decompressed whole, it ends in the OOM killer (exit 137)
with nothing said. Here the output is bounded as it is produced (zlib's max_length), so the
most ever held is the limit: past it, one line and exit 2. The limit is the size whose
parse could still fit: json.loads needs several times the text's size in Python objects,
so a trace larger than an eighth of the memory this process may use (its cgroup's limit
included) could not be analysed anyway; PERFREPORT_MAX_TRACE_BYTES sets it outright.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from reporter.errors import UsageError

LIMIT_ENV = "PERFREPORT_MAX_TRACE_BYTES"
MEMORY_SHARE = 8  # a trace's text may take an eighth of the memory free
MIN_LIMIT = 1 << 30  # never refuse below 1 GiB for lack of memory figures


def max_trace_bytes() -> int:
    if os.environ.get(LIMIT_ENV, "").isdigit():
        return int(os.environ[LIMIT_ENV])
    from reporter.memlimit import available_bytes, meminfo_available

    return max(available_bytes(meminfo_available()) // MEMORY_SHARE, MIN_LIMIT)


def gunzip_bounded(raw: bytes, path: Path, limit: int | None = None) -> bytes | None:
    """The content of gzip data `raw` (every member), or None when it is damaged (the
    caller's gzip.decompress then words the error; it stops where this did, below the
    limit). UsageError when the content passes `limit` bytes."""
    limit = max_trace_bytes() if limit is None else limit
    parts: list[bytes] = []
    total = 0
    data = raw
    while data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(data, limit + 1 - total)
        except zlib.error:
            return None
        total += len(part)
        if total > limit:
            raise UsageError(
                f"{path} expands past {limit / 2**30:.1f} GiB when decompressed: too large "
                f"for a trace this machine could analyse (a gzip bomb?); set {LIMIT_ENV} "
                "to read it anyway"
            )
        if not inflater.eof:
            return None  # truncated
        parts.append(part)
        data = inflater.unused_data
    if data.strip(b"\0"):
        return None  # something after the last member
    return parts[0] if len(parts) == 1 else b"".join(parts)
