"""The profile stage: a real torch.profiler trace, read back by an independent pass and by
TensorBoard's PyTorch Profiler plugin."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch

from reporter.errors import UsageError
from reporter.options import RunOptions
from reporter.profiling.categories import CATEGORIES, kernel_category, op_category
from reporter.profiling.options import profile_steps
from reporter.profiling.scopes import SCOPE_PREFIX, kernel_totals, parse_scope, scope_name
from reporter.stages import StageContext, run_stage
from tests.conftest import TRACE_DATA
from tests.helpers import subject_for

MODEL = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        x = self.stem(x).mean(dim=(2, 3))
        return self.head(self.blocks(x))


def build_model():
    return Net()


def example_inputs():
    return torch.randn(4, 3, 8, 8)


def loss_fn(output, inputs):
    return output.pow(2).mean()
"""


def _write_model(tmp: Path) -> Path:
    path = tmp / "net.py"
    path.write_text(MODEL)
    return path


def _profile(tmp: Path, **options: Any) -> tuple[Any, StageContext]:
    subject = subject_for(_write_model(tmp), tmp)
    opts = RunOptions(model_file=subject.source, out_dir=str(tmp), **options)
    ctx = StageContext(subject=subject, options=opts)
    return run_stage("profile", ctx), ctx


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, StageContext, list[dict]]:
    tmp = tmp_path_factory.mktemp("profile")
    section, ctx = _profile(tmp)
    path = ctx.out_dir / section.trace_files[0]
    with gzip.open(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    return section, ctx, events


def test_trace_is_chrome_json_with_steps_and_module_scopes(profiled: Any) -> None:
    section, ctx, events = profiled
    path = ctx.out_dir / section.trace_files[0]
    assert path.parent == ctx.out_dir / "trace"
    assert path.name.endswith(".pt.trace.json.gz")
    assert all({"ph", "name"} <= set(e) for e in events if e.get("ph") == "X")
    steps = sorted(e["name"] for e in events if e["name"].startswith("ProfilerStep#"))
    # default schedule wait=0 warmup=1 active=2: steps 1 and 2 are recorded
    assert steps == ["ProfilerStep#1", "ProfilerStep#2"]
    scopes = {e["name"] for e in events if e["name"].startswith("nn.Module: ")}
    model = ctx.subject.model
    expected = {scope_name(p, type(m).__name__) for p, m in model.named_modules()}
    assert scopes == expected
    assert "nn.Module: blocks.1.fc (Linear)" in scopes
    # each module ran once per recorded step
    counts = defaultdict(int)
    for e in events:
        if e["name"].startswith("nn.Module: "):
            counts[e["name"]] += 1
    assert set(counts.values()) == {2}


def _nested_self(
    events: list[dict], keep: Any, merge_same_name: bool = False
) -> dict[str, list[float]]:
    """Brute force: an event's parent is the shortest kept event of its thread that encloses
    it; self time is the duration minus the children's. With ``merge_same_name`` an event
    that is the only child of a parent of the same name folds into it, as the profiler's
    key averages do (aten::div_ calling aten::div_ counts once)."""
    spans = [e for e in events if e.get("ph") == "X" and keep(e)]
    parent: dict[int, int | None] = {}
    for i, c in enumerate(spans):
        best = None
        for j, e in enumerate(spans):
            if i == j or e["tid"] != c["tid"] or e["dur"] < c["dur"]:
                continue
            # 2 ns of slack: the trace rounds each start and duration to the nanosecond.
            # No more: back-to-back ops on a fast CPU are well under a microsecond apart.
            if e["ts"] <= c["ts"] and c["ts"] + c["dur"] <= e["ts"] + e["dur"] + 0.002:
                if e["dur"] == c["dur"] and j > i:
                    continue  # equal spans: the earlier one is the parent
                if best is None or spans[best]["dur"] > e["dur"]:
                    best = j
        parent[i] = best
    children: dict[int, list[int]] = defaultdict(list)
    for i, p in parent.items():
        if p is not None:
            children[p].append(i)
    removed: set[int] = set()
    if merge_same_name:
        for i in range(len(spans)):
            p = parent[i]
            if p is not None and spans[p]["name"] == spans[i]["name"] and children[p] == [i]:
                removed.add(i)
                children[p] = children.pop(i, [])
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # calls, total, self
    for i, e in enumerate(spans):
        if i in removed:
            continue
        row = out[e["name"]]
        row[0] += 1
        row[1] += e["dur"]
        row[2] += e["dur"] - sum(spans[c]["dur"] for c in children[i])
    return out


def test_module_times_match_an_independent_pass_over_the_trace(profiled: Any) -> None:
    section, _, events = profiled
    n = len(section.step_us)
    truth = _nested_self(events, lambda e: e["name"].startswith("nn.Module: "))
    rows = {m.name: m for m in section.modules}
    assert set(rows) == {parse_scope(name)[0] for name in truth}
    for name, (calls, total, self_) in truth.items():
        row = rows[parse_scope(name)[0]]
        assert row.calls == calls / n
        assert row.total_us == pytest.approx(total / n, rel=1e-9)
        assert row.self_us == pytest.approx(self_ / n, rel=1e-9, abs=1e-6)
    root = rows[""]
    children = [m for m in section.modules if m.depth == 1]
    assert root.self_us == pytest.approx(root.total_us - sum(m.total_us for m in children))
    assert 0 < root.total_us <= max(section.step_us)


def test_op_times_match_an_independent_pass_over_the_trace(profiled: Any) -> None:
    section, _, events = profiled
    n = len(section.step_us)
    truth = _nested_self(
        events, lambda e: e.get("cat") in ("cpu_op", "user_annotation"), merge_same_name=True
    )
    ops = {o.name: o for o in section.ops_by_name}
    aten = {k: v for k, v in truth.items() if k.startswith("aten::")}
    assert set(aten) == {k for k in ops if k.startswith("aten::")}
    for name, (calls, total, self_) in aten.items():
        o = ops[name]
        assert o.calls == calls / n
        # the trace rounds each time to the nanosecond: allow that per call
        assert o.total_us * n == pytest.approx(total, abs=0.01 * total + 0.01 * calls)
        assert o.self_us * n == pytest.approx(self_, abs=0.01 * self_ + 0.01 * calls)
    # top ops carry input shapes and are sorted by self time
    assert section.top_ops[0].self_us >= section.top_ops[-1].self_us
    addmm = [o for o in section.top_ops if o.name == "aten::addmm"]
    assert {o.input_shapes for o in addmm} >= {"32, 4×32, 32×32", "4, 4×32, 32×4"}
    # with_flops: addmm of (4x32)@(32x4) is 2*4*32*4 FLOPs
    head = next(o for o in addmm if o.input_shapes.startswith("4, "))
    assert head.flops == 2 * 4 * 32 * 4
    # categories partition the ops' self time
    assert set(section.categories_us) == set(CATEGORIES)
    assert sum(section.categories_us.values()) == pytest.approx(
        sum(o.self_us for o in section.ops_by_name)
    )
    assert section.categories_us["matmul/conv"] >= ops["aten::addmm"].self_us


def test_cpu_peak_memory_is_the_highest_allocated_total(profiled: Any) -> None:
    section, _, events = profiled
    totals = [
        e["args"]["Total Allocated"]
        for e in events
        if e["name"] == "[memory]" and e["args"]["Device Type"] == 0
    ]
    assert section.peak_memory_bytes == max(totals) > 0
    # the stem's output 4x32x8x8 float32 is allocated inside its own scope
    stem = next(m for m in section.modules if m.name == "stem")
    assert stem.allocated_bytes >= 4 * 32 * 8 * 8 * 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_tensorboard_plugin_lists_the_run_and_its_steps(profiled: Any) -> None:
    _, ctx, _ = profiled
    logdir = ctx.out_dir / "trace"
    port = _free_port()
    exe = Path(sys.executable).with_name("tensorboard")
    proc = subprocess.Popen(
        [str(exe), "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data/plugin/pytorch_profiler"
    try:
        deadline = time.monotonic() + 60
        runs: dict = {}
        while time.monotonic() < deadline:
            try:
                runs = _get(f"{base}/runs")
                if "trace" in runs["runs"] and not runs["loading"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        assert runs.get("runs") == ["trace"], runs
        q = urllib.parse.quote
        views = _get(f"{base}/views?run=trace")
        assert "Overview" in views
        workers = _get(f"{base}/workers?run=trace&view=Overview")
        assert workers == ["perfreport"]
        spans = _get(f"{base}/spans?run=trace&worker=perfreport")
        overview = _get(f"{base}/overview?run=trace&worker=perfreport&span={q(str(spans[0]))}")
        steps = [row[0] for row in overview["steps"]["rows"]]
        assert steps == ["1", "2"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_train_mode_steps_a_copy_and_leaves_the_weights(tmp_path: Path) -> None:
    subject = subject_for(_write_model(tmp_path), tmp_path)
    before = {k: v.clone() for k, v in subject.model.state_dict().items()}
    opts = RunOptions(
        model_file=subject.source,
        out_dir=str(tmp_path),
        train=True,
        stage_options={"profile": {"steps": [0, 1, 2]}},
    )
    section = run_stage("profile", StageContext(subject=subject, options=opts))
    assert section.mode == "train"
    assert section.optimizer == "AdamW"
    assert len(section.step_us) == 2
    names = {o.name for o in section.ops_by_name}
    assert "aten::convolution_backward" in names
    # Adam's update (single-tensor or foreach form) ran inside the recorded steps
    assert "aten::addcdiv_" in names or "aten::_foreach_addcdiv_" in names
    for k, v in subject.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(p.grad is not None for p in subject.model.parameters())


def test_profile_steps_parse_and_reject() -> None:
    assert profile_steps(None) == (0, 1, 2)
    assert profile_steps("0, 2, 5") == (0, 2, 5)
    for bad in ("1,2", "a,b,c", "1,1,0", "-1,1,1"):
        with pytest.raises(UsageError, match="--profile-steps"):
            profile_steps(bad)


def test_cli_rejects_bad_profile_flags(cli: Any, tmp_path: Path) -> None:
    path = _write_model(tmp_path)
    r = cli(path, "-o", tmp_path / "out", "--profile-steps", "1,1")
    assert r.code == 2 and "--profile-steps" in r.err
    r = cli(path, "-o", tmp_path / "out", "--timing-seconds", "0")
    assert r.code == 2 and "--timing-seconds" in r.err


def test_op_categories() -> None:
    assert op_category("aten::addmm") == "matmul/conv"
    assert op_category("aten::convolution_backward") == "matmul/conv"
    assert op_category("aten::clamp_min") == "elementwise"
    assert op_category("aten::threshold_backward") == "elementwise"
    assert op_category("aten::_log_softmax") == "reductions"
    assert op_category("aten::native_layer_norm") == "reductions"
    assert op_category("aten::copy_") == "copies"
    assert op_category("aten::view") == "other"


def test_kernel_totals_on_a_real_gpu_trace() -> None:
    path = TRACE_DATA / "a100_alexnet.json.gz"
    with gzip.open(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    totals = kernel_totals(events)
    kernels = [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]
    assert sum(n for n, _ in totals.values()) == len(kernels)
    assert sum(t for _, t in totals.values()) == pytest.approx(sum(e["dur"] for e in kernels))
    gemm = [k for k in totals if "gemm" in k.lower()]
    assert gemm and all(kernel_category(k) == "matmul/conv" for k in gemm)


def test_module_totals_on_hand_made_events() -> None:
    from reporter.profiling.scopes import module_totals

    def span(name: str, ts: float, dur: float, tid: int = 1) -> dict:
        return {
            "ph": "X",
            "cat": "user_annotation",
            "name": name,
            "ts": ts,
            "dur": dur,
            "pid": 1,
            "tid": tid,
        }

    def alloc(ts: float, nbytes: int, device: int = 0) -> dict:
        return {
            "ph": "i",
            "name": "[memory]",
            "ts": ts,
            "pid": 1,
            "tid": 1,
            "args": {"Bytes": nbytes, "Device Type": device},
        }

    events = [
        span("nn.Module: <model> (Net)", 1000.0, 100.0),
        span("nn.Module: a (Linear)", 1010.0, 40.0),
        span("nn.Module: a (Linear)", 1060.0, 20.0),  # called twice
        span("aten::addmm", 1012.0, 30.0),  # not a module scope: ignored
        span("nn.Module: b (ReLU)", 5.0, 7.0, tid=2),  # another thread
        alloc(1020.0, 100),
        alloc(1055.0, 50),
        alloc(1065.0, -30),  # a free: not an allocation
        alloc(1070.0, 999, device=1),  # CUDA: not counted for CPU
    ]
    t = module_totals(events)
    assert (t[""].calls, t[""].total_us, t[""].self_us) == (1, 100.0, 40.0)
    assert (t["a"].calls, t["a"].total_us, t["a"].self_us) == (2, 60.0, 60.0)
    assert (t["b"].total_us, t["b"].self_us) == (7.0, 7.0)
    assert (t[""].allocated_bytes, t["a"].allocated_bytes) == (50, 100)
    assert module_totals(events, device_type=1)["a"].allocated_bytes == 999


def test_by_name_table_from_the_by_shape_one_equals_torchs_by_name_averages() -> None:
    from torch.profiler import ProfilerActivity, profile

    from reporter.stages.profile import merge_shapes

    layers = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        for batch in (2, 3, 3):  # two input shapes for each op
            layers(torch.randn(batch, 8))

    def table(averages: Any) -> dict:
        return {
            e.key: (e.count, e.self_cpu_time_total, e.cpu_time_total, e.flops)
            for e in averages
            if e.device_type == torch.autograd.DeviceType.CPU
        }

    by_shape = prof.key_averages(group_by_input_shape=True)
    assert len(by_shape) > len(prof.key_averages())  # the shapes did split some ops
    merged, direct = table(merge_shapes(by_shape)), table(prof.key_averages())
    assert merged.keys() == direct.keys()
    for key, (count, self_us, total_us, flops) in direct.items():
        assert merged[key][0] == count and merged[key][3] == flops, key
        assert merged[key][1] == pytest.approx(self_us) and merged[key][2] == pytest.approx(
            total_us
        )


ENCODER = """
import torch
from torch import nn


def build_model():
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()


def example_inputs():
    return torch.randn(2, 6, 32)
"""


def test_module_scopes_keep_the_encoder_fast_path(tmp_path: Path) -> None:
    """Hooks attached to nn.TransformerEncoderLayer switch off its fused fast path; the
    scopes' hooks are global, so the profile shows the path that timing measures."""
    path = tmp_path / "encoder.py"
    path.write_text(ENCODER)
    subject = subject_for(path, tmp_path)
    ctx = StageContext(
        subject=subject, options=RunOptions(model_file=subject.source, out_dir=str(tmp_path))
    )
    section = run_stage("profile", ctx)
    with gzip.open(ctx.out_dir / section.trace_files[0], "rt") as f:
        names = {e["name"] for e in json.load(f)["traceEvents"] if e.get("ph") == "X"}
    assert "aten::_transformer_encoder_layer_fwd" in names
    assert {scope_name(f"layers.{i}", "TransformerEncoderLayer") for i in (0, 1)} <= names
    # the fused op replaces the layer's submodules: none of them ran
    assert not any(n.startswith(SCOPE_PREFIX + "layers.0.") for n in names)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in subject.model.modules())
