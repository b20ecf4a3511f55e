"""`perfreport model.py --nproc-per-node 2`: real torchrun, real gloo, two processes on loopback.

One straggler run (rank 1 sleeps on purpose) is shared by most tests; one run where rank 1
aborts checks the failure path. Figures are recomputed here from the raw trace events and
from gradients computed in this process; no test leaves a process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from reporter.cli import main
from reporter.loader import load_subject
from reporter.options import RunOptions
from reporter.stages.passes import training_loss

REPO = Path(__file__).resolve().parents[1]
MLP = REPO / "sample_models" / "mlp.py"
SLEEP_S = 0.15
STEPS = (1, 1, 3)  # wait, warm-up, recorded


def leftover_processes() -> list[str]:
    """Processes of a launch still alive: rank entry points or torchrun, or our children."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        if "reporter.distributed.rank_main" in cmd or int(fields[1]) == os.getpid():
            found.append(f"{entry}: {cmd}")
    return found


def launch(out: Path, env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = main(
            [
                str(MLP),
                "-o",
                str(out),
                "--nproc-per-node",
                "2",
                "--profile-steps",
                ",".join(map(str, STEPS)),
                "--format",
                "json,md,html",
                *extra,
            ]
        )
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def straggler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("dist")
    code, report = launch(out, {"PERFREPORT_FAULT": f"rank1.step:sleep={SLEEP_S}"})
    assert code == 0
    yield out, report


def host_comm_from_events(path: Path) -> tuple[float, float, int]:
    """(mean step µs, collective µs per step, gloo all-reduce ranges) recomputed by hand."""
    events = json.loads(path.read_text())["traceEvents"]
    steps = [
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("ph") == "X" and e["name"].startswith("ProfilerStep#")
    ]
    coll = [
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("ph") == "X" and (e["name"].startswith("gloo:") or e["name"].startswith("c10d::"))
    ]
    allreduces = sum(
        1
        for e in events
        if e.get("ph") == "X"
        and e["name"] == "gloo:all_reduce"
        and any(s <= e["ts"] < t for s, t in steps)
    )
    # Union of the collective ranges inside the steps, by a sweep over 1 µs-free endpoints.
    pieces = sorted(
        (max(a, s), min(b, t)) for a, b in coll for s, t in steps if min(b, t) > max(a, s)
    )
    union, cur_s, cur_e = 0.0, None, None
    for a, b in pieces:
        if cur_e is None or a > cur_e:
            if cur_e is not None:
                union += cur_e - cur_s
            cur_s, cur_e = a, b
        else:
            cur_e = max(cur_e, b)
    if cur_e is not None:
        union += cur_e - cur_s
    return sum(t - s for s, t in steps) / len(steps), union / len(steps), allreduces


def test_both_ranks_traced_with_their_rank_inside(straggler: tuple[Path, dict[str, Any]]) -> None:
    out, report = straggler
    d = report["distributed"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and d["wrapper"] == "ddp"
    assert d["status"] == "ok" and [r["state"] for r in d["ranks"]] == ["done", "done"]
    files = sorted((out / "trace").glob("*.pt.trace.json"))
    assert [f.name.split(".")[0] for f in files] == ["rank0", "rank1"]
    for rank, f in enumerate(files):
        info = json.loads(f.read_text())["distributedInfo"]
        assert (info["rank"], info["world_size"], info["backend"]) == (rank, 2, "gloo")
    ranks = report["trace"]["ranks"]
    assert [(r["rank"], r["rank_known"], r["world_size"]) for r in ranks] == [
        (0, True, 2),
        (1, True, 2),
    ]
    assert all(r["step_count"] == STEPS[2] for r in ranks)


def test_allreduce_time_per_rank_matches_the_events(
    straggler: tuple[Path, dict[str, Any]],
) -> None:
    _, report = straggler
    comm = report["distributed"]["comm"]
    assert [c["rank"] for c in comm] == [0, 1]
    for c in comm:
        step_us, comm_us, allreduces = host_comm_from_events(Path(c["file"]))
        names = {k["name"]: k for k in c["collectives"]}
        # One DDP bucket for this small MLP: one all-reduce per recorded step.
        assert names["gloo:all_reduce"]["count"] == allreduces == STEPS[2]
        assert c["step_time_us"] == pytest.approx(step_us, rel=1e-9)
        assert c["communication_per_step_us"] == pytest.approx(comm_us, rel=1e-9)
        assert c["compute_per_step_us"] == pytest.approx(step_us - comm_us, rel=1e-9)
    # Rank 0 waits in the all-reduce for rank 1's sleep; rank 1 computes through it.
    assert comm[0]["communication_per_step_us"] > 0.8 * SLEEP_S * 1e6
    assert comm[1]["compute_per_step_us"] > SLEEP_S * 1e6
    assert comm[1]["communication_per_step_us"] < comm[0]["communication_per_step_us"]


def test_straggler_finding_names_rank_1(straggler: tuple[Path, dict[str, Any]]) -> None:
    _, report = straggler
    found = [f for f in report["findings"] if f["rule"] == "rank-straggler"]
    assert [f["target"] for f in found] == ["rank 1"]
    comm = {c["rank"]: c for c in report["distributed"]["comm"]}
    assert found[0]["evidence"]["compute_per_step_ms"] == pytest.approx(
        comm[1]["compute_per_step_us"] / 1000, abs=1e-3
    )


def test_gradients_really_all_reduced(
    straggler: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Recompute each rank's local gradient here; DDP's must be their mean on every rank."""
    grads = straggler[1]["distributed"]["grads"]
    assert grads["allreduced"] and grads["inputs_differ"]
    # rank r loads the model file with seed r; DDP gives every rank rank 0's weights.
    subjects = [
        load_subject(RunOptions(model_file=str(MLP), out_dir=str(tmp_path), seed=r)) for r in (0, 1)
    ]
    subjects[1].model.load_state_dict(subjects[0].model.state_dict())
    local = []
    for s in subjects:
        s.model.train()
        training_loss(s, s.call()).backward()
        local.append(torch.cat([p.grad.reshape(-1).double() for p in s.model.parameters()]))
    assert grads["local_norms"] == pytest.approx([float(g.norm()) for g in local], rel=1e-5)
    mean = (local[0] + local[1]) / 2
    assert grads["reduced_norms"] == pytest.approx([float(mean.norm())] * 2, rel=1e-5)
    assert grads["elements"] == mean.numel()


def test_trace_command_gives_the_same_per_rank_figures(
    straggler: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, report = straggler
    assert main(["trace", str(out / "trace"), "-o", str(tmp_path), "--format", "json"]) == 0
    again = json.loads((tmp_path / "report.json").read_text())["trace"]
    launched = report["trace"]
    for key in ("ranks", "overall", "spread", "top_kernels", "files"):
        assert again[key] == launched[key], key


def test_report_renders_both_ranks(straggler: tuple[Path, dict[str, Any]]) -> None:
    out, _ = straggler
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert 'id="distributed"' in html and "gloo:all_reduce" in html
    assert "## Several processes" in md
    assert "| 0 | done |" in md and "| 1 | done |" in md


def test_no_process_survives_the_run(straggler: tuple[Path, dict[str, Any]]) -> None:
    assert leftover_processes() == []


def test_a_crashing_rank_is_named_and_the_others_kept(tmp_path: Path) -> None:
    code, report = launch(tmp_path, {"PERFREPORT_FAULT": "rank1.step.2:crash"})
    assert code == 3  # a report is written; the failure is in it
    d = report["distributed"]
    assert d["status"] == "failed" and d["failed_ranks"] == [1]
    assert "rank 1" in d["failure"]
    ranks = {r["rank"]: r for r in d["ranks"]}
    assert ranks[1]["step"] == 2 and ranks[1]["exit_code"] == -6  # SIGABRT, from torchrun
    assert ranks[0]["state"] in ("terminated", "failed")
    assert len(ranks[0]["step_seconds"]) >= 2  # what rank 0 measured before rank 1 died
    assert any(f["rule"] == "rank-failed" and "rank 1" in f["target"] for f in report["findings"])
    assert "rank 1" in (tmp_path / "report.md").read_text()
    assert leftover_processes() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc-per-node", "0"], "--nproc-per-node 0"),
        (["--nproc-per-node", "2", "--nnodes", "2"], "needs --rdzv-endpoint"),
        (["--nproc-per-node", "2", "--rdzv-endpoint", "node0"], "HOST:PORT"),
        (["--fsdp"], "need --nproc-per-node"),
    ],
)
def test_bad_launch_flags_are_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(MLP), "-o", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


# A stand-in for torchrun's process layout only (the launcher's kill logic is what is tested):
# a parent whose workers run in sessions of their own and never exit, and one that forks.
FAKE_LAUNCHER = """
import subprocess, sys, time
code = "import os, time; os.fork(); time.sleep(600)"
for _ in range(2):
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
print("started", flush=True)
time.sleep(600)
"""


def test_timeout_kills_every_process_of_the_launch(tmp_path: Path) -> None:
    import sys
    import time

    from reporter.distributed.launch import descendants, run_process_tree

    before = set(descendants(os.getpid()))
    started = time.monotonic()
    code, timed_out = run_process_tree([sys.executable, "-c", FAKE_LAUNCHER], 3.0, tmp_path / "log")
    assert timed_out and code == -9
    assert time.monotonic() - started < 10
    assert "started" in (tmp_path / "log").read_text()
    assert set(descendants(os.getpid())) <= before
    # The workers were in their own sessions: look for any sleeper of ours left anywhere.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            assert b"os.fork(); time.sleep(600)" not in cmd or _is_zombie(int(entry))


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] == "Z"


def test_root_cause_rank_is_read_from_torchruns_summary() -> None:
    from reporter.distributed.launch import failed_ranks_from_log, root_cause_ranks

    text = (
        "Failures:\n[1]:\n  time      : t\n  host      : h\n  rank      : 0 (local_rank: 0)\n"
        "  exitcode  : 143 (pid: 5)\n------\nRoot Cause (first observed failure):\n[0]:\n"
        "  time      : t\n  host      : h\n  rank      : 3 (local_rank: 1)\n"
        "  exitcode  : -6 (pid: 6)  (SIGABRT)\n"
    )
    assert failed_ranks_from_log(text) == {0: 143, 3: -6}
    assert root_cause_ranks(text) == [3]


def test_multi_node_command_uses_c10d_rendezvous(tmp_path: Path) -> None:
    from reporter.distributed.launch import LaunchSpec, torchrun_command

    cmd = torchrun_command(LaunchSpec(4, nnodes=2, rdzv_endpoint="node0:29500"), tmp_path / "o")
    text = " ".join(cmd)
    assert "-m torch.distributed.run --nproc-per-node 4 --nnodes 2" in text
    assert "--rdzv-backend c10d --rdzv-endpoint node0:29500" in text
    assert "--standalone" not in text
    assert cmd[-3:] == ["-m", "reporter.distributed.rank_main", str(tmp_path / "o")]
    single = torchrun_command(LaunchSpec(2), tmp_path / "o")
    assert "--standalone" in single and "--rdzv-endpoint" not in single


def test_a_hang_names_the_rank_that_got_least_far(tmp_path: Path) -> None:
    """The timeout path on what the ranks wrote (a real hang costs the whole --timeout)."""
    from reporter.distributed.launch import LaunchResult, LaunchSpec
    from reporter.distributed.run import build_section

    statuses = {
        0: {"rank": 0, "state": "running", "phase": "backward", "step": 2, "step_seconds": [0.1]},
        1: {"rank": 1, "state": "running", "phase": "forward", "step": 2, "step_seconds": [0.1]},
        2: {"rank": 2, "state": "running", "phase": "backward", "step": 2, "step_seconds": [0.1]},
    }
    result = LaunchResult(["torchrun"], -9, True, 30.0, "", {}, [])
    section = build_section(LaunchSpec(3, timeout=30), "ddp", result, statuses, 3, tmp_path)
    assert section.status == "timeout" and section.failed_ranks == [1]
    assert "rank 1 got least far" in section.failure
    assert [r.state for r in section.ranks] == ["killed at the timeout"] * 3


def test_grads_not_allreduced_rule_both_ways() -> None:
    """The rule reads only the report: a mismatching gradient check is critical."""
    from reporter.report import ModelInfo, Report
    from reporter.report.distributed import DistributedSection, GradCheck
    from reporter.rules import run_rules

    def report(allreduced: bool) -> Report:
        r = Report(model=ModelInfo(class_name="X", source="x.py"))
        r.distributed = DistributedSection(
            world_size=2,
            grads=GradCheck(
                allreduced=allreduced,
                max_rel_diff=0.0 if allreduced else 0.31,
                local_norms=[1.0, 1.2],
                reduced_norms=[1.1, 1.1] if allreduced else [1.0, 1.2],
            ),
        )
        return r

    assert "grads-not-allreduced" in {f.rule for f in run_rules(report(False))}
    assert "grads-not-allreduced" not in {f.rule for f in run_rules(report(True))}


def test_kill_9_of_perfreport_ends_torchrun_and_every_rank(tmp_path: Path) -> None:
    """perfreport killed mid-launch (rank 0 hangs, rank 1 waits on it): the lifeline ends
    torchrun, and each rank, in a session of its own, ends with torchrun."""
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, PERFREPORT_FAULT="rank0.step.1:hang", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "reporter", str(MLP), "-o", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [*cmd, "--nproc-per-node", "2", "--profile-steps", "0,1,2", "--timeout", "600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while len(_launch_pids()) < 3 and time.monotonic() < deadline:  # torchrun + 2 ranks
            time.sleep(0.2)
        launched = _launch_pids()
        assert len(launched) >= 3, launched
        time.sleep(1.0)  # both ranks past their start, in the step
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(not _is_zombie(p) for p in launched) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in launched if not _is_zombie(p)]
    for p in left:  # leave nothing behind, whatever the assertion says
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    assert not left, "processes of the launch outlived perfreport"


def _launch_pids() -> list[int]:
    """torchrun (under its guard) and the rank entry points now running."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if (b"reporter.distributed.rank_main" in cmd or b"torch.distributed.run" in cmd) and (
            not _is_zombie(int(entry))
        ):
            found.append(int(entry))
    return found
