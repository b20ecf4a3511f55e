"""Memory this process may use: the host's, bounded by its cgroup's limit.

In a container or a CI job the kernel's OOM killer acts at the cgroup's limit, which may be
far below the host's free memory that /proc/meminfo reports. cgroup v2 gives memory.max
and memory.current, v1 memory.limit_in_bytes and memory.usage_in_bytes; a nested cgroup is
also held to its ancestors' limits, so the tightest one on the way up counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages, rounded).
V1_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class CgroupMemory:
    limit: int  # bytes
    usage: int  # bytes in use now, by every process of the cgroup

    @property
    def free(self) -> int:
        return max(self.limit - self.usage, 0)


def cgroup_memory(root: Path = Path("/")) -> CgroupMemory | None:
    """The tightest memory limit of this process's cgroup and its ancestors, with the
    usage of the cgroup that sets it; None when no limit is set (or none can be read)."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    found: list[CgroupMemory] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: "0::/path"
            found += _walk(root / "sys/fs/cgroup", path, "memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1: "N:memory:/path"
            base = root / "sys/fs/cgroup/memory"
            found += _walk(base, path, "memory.limit_in_bytes", "memory.usage_in_bytes")
    return min(found, key=lambda c: c.free, default=None)


def _walk(mount: Path, path: str, limit_file: str, usage_file: str) -> list[CgroupMemory]:
    """Limits from the cgroup's folder up to the mount point (inside a container the
    path may name a folder that is not mounted: then only the mount point is read)."""
    out = []
    folder = mount / path.strip("/")
    if not folder.is_dir():
        folder = mount
    while True:
        limit, usage = _number(folder / limit_file), _number(folder / usage_file)
        if limit is not None and usage is not None and limit < V1_UNLIMITED:
            out.append(CgroupMemory(limit, usage))
        if folder == mount or mount not in folder.parents:
            return out
        folder = folder.parent


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def available_bytes(meminfo_available: int, root: Path = Path("/")) -> int:
    """Bytes free to this process: MemAvailable, or less when its cgroup allows less."""
    cgroup = cgroup_memory(root)
    if cgroup is None:
        return meminfo_available
    return min(meminfo_available, cgroup.free) if meminfo_available else cgroup.free


def total_bytes(root: Path = Path("/")) -> int:
    """Physical memory, or the cgroup's limit when it is lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cgroup = cgroup_memory(root)
    return min(physical, cgroup.limit) if cgroup is not None else physical


def meminfo_available() -> int:
    """MemAvailable from /proc/meminfo, in bytes (0 when it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
