"""Process and machine counters read around the timed calls, and what they add up to.

Latency alone cannot say *why* it is what it is. Two causes were measured on a CPU:
- page faults: glibc's malloc returns large freed blocks to the kernel (mmap/trim
  thresholds), so every forward faults its activations back in; the figure then depends
  on what the process allocated before (see docs/design.md);
- oversubscription: other processes hold the cores torch's threads need, and the threads
  of one parallel op wait for the one that is descheduled (the MNIST CNN went from 3.5 ms
  to 100 ms with one of two cores busy).
The readers here take one snapshot each; the pure functions turn two snapshots into the
figures kept in the report, so tests can feed them constructed counters.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from reporter.report.timing_counters import TimingCounters

# /proc/stat fields after the cpu name: user nice system idle iowait irq softirq steal ...
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (guest is in user)
STEAL_FIELD = 7
PROC_STAT = Path("/proc/stat")
PROC_LOADAVG = Path("/proc/loadavg")
CGROUP_CPU_STAT = Path("/sys/fs/cgroup/cpu.stat")


@dataclass
class Snapshot:
    wall_s: float
    user_s: float  # this process, every thread
    system_s: float
    minor_faults: int
    major_faults: int
    voluntary_switches: int
    involuntary_switches: int
    cpu_busy_s: float | None = None  # the CPUs this process may run on, from /proc/stat
    cpu_steal_s: float | None = None
    throttled_s: float | None = None  # cgroup v2 cpu.stat throttled_usec
    loadavg_1min: float | None = None


@dataclass
class CpuTimes:
    """Busy and steal seconds summed over some CPUs of /proc/stat."""

    busy_s: float
    steal_s: float
    cpus: list[int] = field(default_factory=list)


def parse_proc_stat(text: str, cpus: set[int] | None, ticks_per_s: float) -> CpuTimes | None:
    """Busy and steal time of the listed CPUs (all when None) from /proc/stat's text.

    Per-CPU lines are used, not the machine total, so that on a host with more CPUs than
    this process may use (taskset, cpusets) the load of the others is left out.
    """
    busy = steal = 0.0
    seen: list[int] = []
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        index = int(name[3:])
        if cpus is not None and index not in cpus:
            continue
        values = [int(v) for v in rest.split()]
        busy += sum(values[i] for i in BUSY_FIELDS if i < len(values))
        steal += values[STEAL_FIELD] if len(values) > STEAL_FIELD else 0
        seen.append(index)
    if not seen:
        return None
    return CpuTimes(busy_s=busy / ticks_per_s, steal_s=steal / ticks_per_s, cpus=seen)


def parse_throttled_s(text: str) -> float | None:
    """Seconds the cgroup's CPU quota held this process back (cgroup v2 cpu.stat)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "throttled_usec" and value.strip().isdigit():
            return int(value) / 1e6
    return None


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity; all of them where unknown)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def snapshot(cpus: set[int] | None = None) -> Snapshot:
    """This process's rusage and the machine's counters, now."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    snap = Snapshot(
        wall_s=time.perf_counter(),
        user_s=usage.ru_utime,
        system_s=usage.ru_stime,
        minor_faults=usage.ru_minflt,
        major_faults=usage.ru_majflt,
        voluntary_switches=usage.ru_nvcsw,
        involuntary_switches=usage.ru_nivcsw,
    )
    ticks = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    times = parse_proc_stat(_read(PROC_STAT), cpus, ticks)
    if times is not None:
        snap.cpu_busy_s, snap.cpu_steal_s = times.busy_s, times.steal_s
    snap.throttled_s = parse_throttled_s(_read(CGROUP_CPU_STAT))
    load = _read(PROC_LOADAVG).split()
    snap.loadavg_1min = float(load[0]) if load else None
    return snap


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return ""


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def counters_between(
    before: Snapshot, after: Snapshot, calls: int, threads: int, cpus: int
) -> TimingCounters:
    """What happened between two snapshots taken around ``calls`` forwards."""
    wall = max(after.wall_s - before.wall_s, 1e-9)
    user = after.user_s - before.user_s
    system = after.system_s - before.system_s
    busy = _delta(after.cpu_busy_s, before.cpu_busy_s)
    # Everyone else's CPU time on our CPUs: the CPUs' busy time less our own. /proc/stat
    # ticks are 10 ms, so a short window can come out slightly negative: floor at 0.
    others = None if busy is None else max(0.0, (busy - user - system) / wall)
    minor = after.minor_faults - before.minor_faults
    return TimingCounters(
        wall_s=wall,
        calls=calls,
        threads=threads,
        cpus=cpus,
        cpu_user_s=user,
        cpu_system_s=system,
        minor_faults=minor,
        major_faults=after.major_faults - before.major_faults,
        voluntary_switches=after.voluntary_switches - before.voluntary_switches,
        involuntary_switches=after.involuntary_switches - before.involuntary_switches,
        minor_faults_per_call=minor / calls if calls else 0.0,
        system_share=system / (user + system) if user + system > 0 else 0.0,
        system_per_wall=system / wall,
        cpu_per_thread=(user + system) / (wall * max(1, min(threads, cpus))),
        others_cores=others,
        steal_share=_share(_delta(after.cpu_steal_s, before.cpu_steal_s), wall * cpus),
        throttled_share=_share(_delta(after.throttled_s, before.throttled_s), wall),
        loadavg_1min=after.loadavg_1min,
    )


def _share(part: float | None, whole: float) -> float | None:
    return None if part is None or whole <= 0 else max(0.0, part / whole)
