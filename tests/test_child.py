"""reporter.child: the one wording for a dead process, the event channel, injected faults."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reporter import child

OOM = "was killed (SIGKILL: most often the kernel's out-of-memory killer)"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (None, "did not finish"),
        (-signal.SIGKILL, OOM),
        (-signal.SIGSEGV, "crashed (segmentation fault)"),
        (-signal.SIGABRT, "was ended by SIGABRT"),
        (-signal.SIGTERM, "was ended by SIGTERM"),
        (-99, "was ended by signal 99"),
        (3, "exited with code 3 (the model code may have called os._exit or exit)"),
        (0, "exited with code 0 (the model code may have called os._exit or exit)"),
    ],
)
def test_every_way_a_process_ends_has_its_line(code: int | None, words: str) -> None:
    assert child.describe_exit(code) == words


def test_a_process_without_model_code_gets_no_hint() -> None:
    assert child.describe_exit(1, model_code=False) == "exited with code 1"
    assert child.describe_exit(-signal.SIGKILL, model_code=False) == OOM


@pytest.mark.parametrize(
    ("kind", "words"),
    [("crash", "was ended by SIGABRT"), ("exit", "exited with code 3"), ("kill", OOM)],
)
def test_a_real_child_dying_at_its_fault_point_is_described(kind: str, words: str) -> None:
    code = "from reporter import child; child.inject_fault('here.now'); print('survived')"
    env = child.child_env({child.FAULT_ENV: f"here:{kind}"})
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert b"survived" not in done.stdout
    assert child.describe_exit(done.returncode).startswith(words)


def test_events_come_back_in_order_whatever_their_size() -> None:
    sink = io.BytesIO()
    writer = child.EventWriter(sink)
    writer.emit("start", stage="flops")
    writer.emit("end", rows=["x" * 100] * 5000)
    sink.seek(0)
    events = child.EventReader(sink).read()
    assert events == [
        {"event": "start", "stage": "flops"},
        {"event": "end", "rows": ["x" * 100] * 5000},
    ]


def test_a_torn_last_line_waits_for_its_end() -> None:
    """A line being written is not read until it is whole; one a crash cut short never is."""
    stream = io.BytesIO(b'{"event": "a"}\n{"event": "b", "x"')
    reader = child.EventReader(stream)
    assert reader.read() == [{"event": "a"}]
    stream.write(b': 1}\n{"event": "c"')  # the writer goes on: the torn line is whole now
    stream.seek(len(b'{"event": "a"}\n{"event": "b", "x"'))
    assert reader.read() == [{"event": "b", "x": 1}]
    assert reader.read() == []


def test_an_event_file_torn_by_a_crash_keeps_its_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "rank1.jsonl"
    writer = child.EventWriter.append_to(path)
    writer.emit("status", step=1)
    writer.emit("status", step=2)
    with open(path, "ab") as f:
        f.write(b'{"event": "status", "st')
    assert [e["step"] for e in child.read_event_file(path)] == [1, 2]


def test_a_missing_event_file_has_no_events(tmp_path: Path) -> None:
    assert child.read_event_file(tmp_path / "never-written.jsonl") == []


@pytest.mark.parametrize(
    ("spec", "point", "kind"),
    [
        ("stage.flops", "stage.flops", "raise"),
        ("stage.flops:hang", "stage.flops", "hang"),
        ("rank1.step", "rank1.step.4", "raise"),  # a point matches the points below it
        ("rank1.step:sleep=0.2", "rank1.step.0", "sleep=0.2"),
        ("rank1.step.2:crash", "rank1.step.2", "crash"),
    ],
)
def test_a_fault_is_found_at_its_point(monkeypatch, spec: str, point: str, kind: str) -> None:
    monkeypatch.setenv(child.FAULT_ENV, spec)
    assert child.fault_at(point) == child.Fault(point, kind)


@pytest.mark.parametrize(
    ("spec", "point"),
    [
        ("", "stage.flops"),
        ("stage.flops", "stage.flops_extra"),
        ("rank1.step.2", "rank1.step.3"),
        ("rank1.step", "rank11.step.0"),
        ("stage.flops.inner", "stage.flops"),
    ],
)
def test_no_fault_elsewhere(monkeypatch, spec: str, point: str) -> None:
    monkeypatch.setenv(child.FAULT_ENV, spec)
    assert child.fault_at(point) is None
    child.inject_fault(point)  # returns: nothing asked for here


def test_an_injected_raise_names_its_point(monkeypatch) -> None:
    monkeypatch.setenv(child.FAULT_ENV, "stage.summary")
    with pytest.raises(RuntimeError, match="fault injected at stage.summary"):
        child.inject_fault("stage.summary")


def test_an_injected_sleep_goes_on(monkeypatch) -> None:
    monkeypatch.setenv(child.FAULT_ENV, "rank0.step:sleep=0")
    child.inject_fault("rank0.step.3")  # returns after sleeping


def test_rank_statuses_fold_their_events_and_survive_a_torn_line(tmp_path: Path) -> None:
    from reporter.distributed.run import rank_run, read_statuses

    for rank in (0, 1):
        writer = child.EventWriter.append_to(tmp_path / f"rank{rank}.jsonl")
        writer.emit("status", rank=rank, state="starting", phase="init", step=-1)
        writer.emit("status", state="running", phase="forward", step=2)
    with open(tmp_path / "rank1.jsonl", "ab") as f:  # rank 1 died while writing its status
        f.write(b'{"event": "status", "phase": "backw')
    (tmp_path / "rank2.jsonl").touch()  # rank 2 died before its first line
    statuses = read_statuses(tmp_path)
    assert sorted(statuses) == [0, 1]
    assert statuses[1] == {"rank": 1, "state": "running", "phase": "forward", "step": 2}
    run = rank_run(1, statuses[1], -signal.SIGABRT)
    assert run.error == "its process was ended by SIGABRT"
