"""The timing counters and the decisions made on them: oversubscribed CPUs, page faults
worth an allocator experiment, unsettled measurements. Every decision is fed constructed
counters, so nothing here depends on how busy the machine is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reporter.profiling import allocator, contention
from reporter.profiling.counters import (
    Snapshot,
    counters_between,
    parse_proc_stat,
    parse_throttled_s,
)
from reporter.report import ModelInfo, Report
from reporter.report.profile import LatencyStats, TimingSection
from reporter.report.timing_counters import AllocatorExperiment, AllocatorVariant, TimingCounters
from reporter.rules import run_rules
from reporter.rules.timing import fewer_threads

PROC_STAT = """cpu  500 0 100 9000 10 0 0 0 0 0
cpu0 300 0 50 4500 5 0 0 0 0 0
cpu1 200 10 50 4500 5 4 6 30 0 0
intr 12345
ctxt 999
"""


def test_proc_stat_sums_busy_and_steal_of_the_process_cpus_only() -> None:
    both = parse_proc_stat(PROC_STAT, None, 100.0)
    # user + nice + system + irq + softirq + steal, in 10 ms ticks
    assert both is not None and both.cpus == [0, 1]
    assert both.busy_s == pytest.approx((300 + 50 + 200 + 10 + 50 + 4 + 6 + 30) / 100)
    assert both.steal_s == pytest.approx(0.30)
    one = parse_proc_stat(PROC_STAT, {1}, 100.0)
    assert one is not None and one.cpus == [1]
    assert one.busy_s == pytest.approx((200 + 10 + 50 + 4 + 6 + 30) / 100)
    assert parse_proc_stat(PROC_STAT, {7}, 100.0) is None
    assert parse_proc_stat("", None, 100.0) is None


def test_cgroup_throttling_is_read_in_seconds() -> None:
    text = "usage_usec 100\nnr_throttled 3\nthrottled_usec 250000\n"
    assert parse_throttled_s(text) == 0.25
    assert parse_throttled_s("usage_usec 100\n") is None


def snap(wall: float, user: float, system: float, faults: int, busy: float, **kw: Any) -> Snapshot:
    return Snapshot(
        wall_s=wall,
        user_s=user,
        system_s=system,
        minor_faults=faults,
        major_faults=kw.get("major", 0),
        voluntary_switches=kw.get("vol", 0),
        involuntary_switches=kw.get("invol", 0),
        cpu_busy_s=busy,
        cpu_steal_s=kw.get("steal", 0.0),
        throttled_s=kw.get("throttled"),
        loadavg_1min=kw.get("load"),
    )


def test_counters_between_two_snapshots() -> None:
    before = snap(10.0, 1.0, 0.5, 1000, 50.0, invol=5)
    # 2 s, 200 calls: this process used 2.4 s user + 0.6 s system, the two CPUs were busy
    # 4.0 s in all, so other processes used 1.0 s: half a core.
    after = snap(12.0, 3.4, 1.1, 61000, 54.0, invol=405, steal=0.2, load=1.5)
    c = counters_between(before, after, calls=200, threads=2, cpus=2)
    assert c.minor_faults == 60000 and c.minor_faults_per_call == 300
    assert c.cpu_user_s == pytest.approx(2.4) and c.cpu_system_s == pytest.approx(0.6)
    assert c.system_share == pytest.approx(0.6 / 3.0)
    assert c.system_per_wall == pytest.approx(0.3)
    assert c.cpu_per_thread == pytest.approx(3.0 / (2.0 * 2))
    assert c.others_cores == pytest.approx(0.5)
    assert c.steal_share == pytest.approx(0.2 / (2.0 * 2))
    assert c.involuntary_switches == 400 and c.loadavg_1min == 1.5
    assert c.throttled_share is None  # no cgroup v2 cpu.stat


def counters(**kw: Any) -> TimingCounters:
    base: dict[str, Any] = dict(
        wall_s=1.0,
        calls=100,
        threads=2,
        cpus=2,
        cpu_user_s=1.9,
        cpu_system_s=0.05,
        minor_faults=0,
        cpu_per_thread=0.97,
        others_cores=0.0,
    )
    base.update(kw)
    return TimingCounters(**base)


def stats(median: float, low: float) -> LatencyStats:
    return LatencyStats(median=median, p90=median, p99=median, min=low, max=median * 1.1)


def test_oversubscription_needs_a_shortage_of_cores_and_a_symptom() -> None:
    # The measured case: one of two cores busy elsewhere, 2 torch threads, 3.5 ms -> 100 ms.
    busy = counters(others_cores=1.0, cpu_per_thread=0.5, involuntary_switches=300)
    found = contention.oversubscription(busy, stats(100.0, 3.5))
    assert found is not None
    assert found["cores_short"] == 1.0 and found["other_processes_cores"] == 1.0
    assert found["median_over_min"] == pytest.approx(100 / 3.5, rel=1e-3)
    assert "each thread ran 50%" in found["symptoms"]
    assert found["involuntary_switches_per_s"] == 300.0
    reason = contention.oversubscription_reason(found)
    assert "other processes used 1.00 of 2 CPU(s) while torch ran 2 thread(s)" in reason
    # Every sample slow alike (no spread), but the threads got half the CPU: still flagged.
    assert contention.oversubscription(busy, stats(100.0, 95.0)) is not None
    # Load on the machine that left the figures alone is not reported ...
    calm = counters(others_cores=1.0, cpu_per_thread=0.95)
    assert contention.oversubscription(calm, stats(3.6, 3.5)) is None
    # ... nor a wide spread on free cores, nor a shortage below half a core.
    assert contention.oversubscription(counters(), stats(10.0, 3.5)) is None
    slight = counters(others_cores=0.3, cpu_per_thread=0.5)
    assert contention.oversubscription(slight, stats(10.0, 3.5)) is None
    # One thread on two CPUs with one busy elsewhere: a core is still free.
    single = counters(threads=1, others_cores=1.0, cpu_per_thread=0.9)
    assert contention.oversubscription(single, stats(10.0, 3.5)) is None


def test_more_threads_than_cpus_or_a_throttling_quota_is_a_shortage() -> None:
    too_many = counters(threads=4, cpus=2, others_cores=None, cpu_per_thread=0.9)
    found = contention.oversubscription(too_many, stats(10.0, 3.0))
    assert found is not None and found["cores_short"] == 2.0
    assert "other_processes_cores" not in found
    assert "torch ran 4 thread(s) on 2 CPU(s)" in contention.oversubscription_reason(found)
    throttled = counters(throttled_share=0.5, cpu_per_thread=0.5)
    found = contention.oversubscription(throttled, stats(10.0, 9.0))
    assert found is not None and found["cores_short"] == 1.0
    assert found["cgroup_throttled_share"] == 0.5


def test_page_faults_count_when_many_and_costly() -> None:
    many = counters(minor_faults=67000, minor_faults_per_call=670, system_per_wall=0.34)
    reason = contention.page_fault_reason(many)
    assert reason.startswith("670 minor page faults per forward")
    assert "34% of the wall time" in reason
    assert contention.page_fault_reason(counters(minor_faults_per_call=670)) == ""
    few = counters(minor_faults_per_call=10, system_per_wall=0.5)
    assert contention.page_fault_reason(few) == ""
    assert contention.page_fault_reason(few, min_faults=5, min_share=0.4) != ""


def test_three_samples_with_an_unsettled_warm_up_are_noisy() -> None:
    tight = stats(10.0, 9.9)
    reason = contention.timing_noise(tight, 3, warmup_stable=False)
    assert "only 3 sample(s) and the warm-up never settled" in reason
    assert contention.timing_noise(tight, 3, warmup_stable=True) == ""
    assert contention.timing_noise(tight, 40, warmup_stable=False) == ""
    busy = counters(others_cores=1.0, cpu_per_thread=0.5)
    assert "CPUs oversubscribed" in contention.timing_noise(tight, 40, True, busy)


def test_the_experiment_environment() -> None:
    env = allocator.GLIBC_ENV
    # glibc ignores an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit) and then
    # keeps it dynamic: the value must be at most that.
    assert int(env["MALLOC_MMAP_THRESHOLD_"]) == 32 * 1024 * 1024
    assert int(env["MALLOC_TRIM_THRESHOLD_"]) > int(env["MALLOC_MMAP_THRESHOLD_"])
    assert int(env["MALLOC_TOP_PAD_"]) > 0
    assert allocator.preload_env("/l/libjemalloc.so.2", {}) == {"LD_PRELOAD": "/l/libjemalloc.so.2"}
    assert allocator.preload_env("/l/libjemalloc.so.2", {"LD_PRELOAD": "/x/libfoo.so"}) == {
        "LD_PRELOAD": "/l/libjemalloc.so.2 /x/libfoo.so"
    }
    variants = allocator.experiment_variants({"jemalloc": "/l/libjemalloc.so.2"}, {})
    assert [v.name for v in variants] == [allocator.GLIBC_HIGH, "jemalloc"]
    assert variants[0].env == env and variants[1].env == {"LD_PRELOAD": "/l/libjemalloc.so.2"}
    lines = allocator.env_lines(variants[0].env).splitlines()
    assert lines[0] == "export MALLOC_MMAP_THRESHOLD_=33554432"


def test_preload_libraries_are_found_by_file_name(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "libjemalloc.so.2").write_bytes(b"")
    (first / "libtcmalloc_minimal.so.4").write_bytes(b"")
    (second / "libtcmalloc.so.4").write_bytes(b"")
    found = allocator.find_preload_libs([first, second])
    assert found == {
        "jemalloc": str(second / "libjemalloc.so.2"),
        "tcmalloc": str(first / "libtcmalloc_minimal.so.4"),
    }
    assert allocator.find_preload_libs([tmp_path]) == {}


def test_malloc_in_use_from_the_process_maps() -> None:
    maps = "7f00-7f01 r-xp 0 08:01 5 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n"
    assert allocator.malloc_in_use(maps, {}) == "jemalloc"
    plain = "7f00-7f01 r-xp 0 08:01 5 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    assert allocator.malloc_in_use(plain, {}) == "glibc malloc"
    assert (
        allocator.malloc_in_use(plain, {"MALLOC_TRIM_THRESHOLD_": "1"})
        == "glibc malloc (MALLOC_TRIM_THRESHOLD_=1)"
    )


def timing_with(median: float, faults: float = 0.0, allocator_name: str = "") -> TimingSection:
    return TimingSection(
        latency_ms=stats(median, median * 0.98),
        throughput=8 / (median / 1e3),
        batch_size=8,
        counters=counters(minor_faults_per_call=faults, system_per_wall=0.3),
        allocator=allocator_name,
    )


def test_experiment_speedups_against_a_fresh_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "library_dirs", lambda: [])  # glibc variant only
    seen: list[dict[str, str]] = []

    def time_fn(env: dict[str, str]) -> TimingSection:
        seen.append(env)
        return timing_with(2.5, 0.0) if env else timing_with(4.0, 800.0, "glibc malloc")

    exp = allocator.run_experiment("why", time_fn, {"MALLOC_ARENA_MAX": "2", "HOME": "/h"})
    assert seen == [{}, allocator.GLIBC_ENV]
    assert exp.baseline.env == {"MALLOC_ARENA_MAX": "2"}  # what was set already, recorded
    assert exp.baseline.median_ms == 4.0 and exp.baseline.minor_faults_per_call == 800.0
    (v,) = exp.variants
    assert v.median_ms == 2.5 and v.speedup == pytest.approx(1.6)

    def broken(env: dict[str, str]) -> TimingSection:
        if env:
            raise RuntimeError("the model process crashed")
        return timing_with(4.0)

    exp = allocator.run_experiment("why", broken, {})
    assert exp.variants[0].status == "failed" and exp.variants[0].speedup is None
    assert "crashed" in exp.variants[0].error

    def no_baseline(env: dict[str, str]) -> TimingSection:
        raise RuntimeError("timed out")

    exp = allocator.run_experiment("why", no_baseline, {})
    assert exp.baseline.status == "failed" and exp.variants == []


def report_with(timing: TimingSection) -> Report:
    report = Report(model=ModelInfo(class_name="Net", source="net.py"))
    report.timing = timing
    return report


def variant(name: str, median: float, env: dict[str, str]) -> AllocatorVariant:
    return AllocatorVariant(name=name, env=env, median_ms=median, speedup=4.0 / median)


def test_allocator_finding_recommends_the_fastest_measured_variant() -> None:
    timing = timing_with(4.0, 800.0, "glibc malloc")
    timing.allocator_experiment = AllocatorExperiment(
        baseline=AllocatorVariant(name=allocator.BASELINE, median_ms=4.0),
        variants=[
            variant(allocator.GLIBC_HIGH, 2.5, dict(allocator.GLIBC_ENV)),
            variant("jemalloc", 2.0, {"LD_PRELOAD": "/l/libjemalloc.so.2"}),
            AllocatorVariant(name="tcmalloc", status="failed", error="no such file"),
        ],
    )
    (f,) = [f for f in run_rules(report_with(timing)) if f.rule == "allocator-page-faults"]
    assert f.severity == "warning"
    assert "jemalloc ran 2.00x faster" in f.title
    assert f.snippet == "export LD_PRELOAD=/l/libjemalloc.so.2"
    assert f.evidence["faults_per_forward"] == "800"
    assert f.evidence[allocator.GLIBC_HIGH] == "2.500 ms, 1.60x"
    assert f.evidence["tcmalloc"] == "failed: no such file"
    # No variant 5% faster: reported as info, with nothing to set.
    for v in timing.allocator_experiment.variants[:2]:
        v.median_ms, v.speedup = 3.9, 4.0 / 3.9
    (f,) = [f for f in run_rules(report_with(timing)) if f.rule == "allocator-page-faults"]
    assert f.severity == "info" and not f.snippet
    assert "no allocator variant was faster" in f.title


def test_oversubscription_finding_suggests_the_free_cores() -> None:
    timing = timing_with(100.0)
    timing.latency_ms = stats(100.0, 3.5)
    timing.counters = counters(others_cores=1.0, cpu_per_thread=0.5, involuntary_switches=300)
    found = [f for f in run_rules(report_with(timing)) if f.rule == "cpu-oversubscribed"]
    assert len(found) == 1
    f = found[0]
    assert f.evidence["other_processes_cores"] == 1.0 and f.evidence["torch_threads"] == 2
    assert f.evidence["fastest_sample"] == "3.500 ms"
    assert "--threads 1" in f.snippet
    # One thread already: nothing to lower, only the machine to blame.
    timing.counters = counters(threads=1, others_cores=1.8, cpu_per_thread=0.3)
    (f,) = [f for f in run_rules(report_with(timing)) if f.rule == "cpu-oversubscribed"]
    assert f.snippet == "" and f.recommendation.endswith("idle machine.")
    assert [fewer_threads(t, 8, o) for t, o in ((8, 2.5), (4, 2.5), (2, None))] == [5, None, None]
    timing.counters = counters()
    assert not [f for f in run_rules(report_with(timing)) if f.rule == "cpu-oversubscribed"]


def test_counters_and_experiment_render_escaped(tmp_path: Path) -> None:
    from reporter.render import write_report
    from reporter.render.format import mdcode
    from reporter.report import load_report

    evil = "<script>alert(1)</script>|`x`"
    timing = timing_with(4.0, 800.0, f"glibc malloc (GLIBC_TUNABLES={evil})")
    timing.allocator_experiment = AllocatorExperiment(
        baseline=AllocatorVariant(name=allocator.BASELINE, env={"LD_PRELOAD": evil}, median_ms=4.0),
        variants=[
            variant(allocator.GLIBC_HIGH, 2.5, dict(allocator.GLIBC_ENV)),
            AllocatorVariant(name="jemalloc", status="failed", error=evil),
        ],
        reason="800 minor page faults per forward",
    )
    report = report_with(timing)
    report.findings = run_rules(report)
    write_report(report, tmp_path, ("html", "json", "md"))
    html = (tmp_path / "report.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "Allocator experiment" in html and "1.60×" in html
    md = (tmp_path / "report.md").read_text()
    # outside code spans user text is escaped; inside one it is shown as written
    assert "failed: \\<script\\>alert(1)\\</script\\>\\|" in md
    assert mdcode(f"LD_PRELOAD={evil}") in md
    assert "| 2.500 ms | – | 1.60× |" in md  # no fault count was measured for that one
    assert "800 minor page faults per call" in md
    again = load_report(tmp_path / "report.json")
    assert again.timing.counters == timing.counters
    assert again.timing.allocator_experiment.variants[0].speedup == 1.6
