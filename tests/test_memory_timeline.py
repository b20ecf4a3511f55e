"""A training step's memory over time (--train): categories, the peak, checks and rules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from reporter.report import ModelInfo, Report
from reporter.report.memory_timeline import LiveTensor, MemoryTimeline
from reporter.stages import StageContext, run_stage
from tests.helpers import subject_for

ROOT = Path(__file__).resolve().parent.parent


def _memory(model_file: Path, tmp: Path) -> tuple[Any, Any]:
    from reporter.options import RunOptions

    subject = subject_for(model_file, tmp)
    opts = RunOptions(model_file=str(model_file), out_dir=str(tmp), stages=["memory"], train=True)
    before = {k: v.clone() for k, v in subject.model.state_dict().items()}
    section = run_stage("memory", StageContext(subject=subject, options=opts))
    after = subject.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the analysed model changed"
    return section, subject


def _hand_counts(model: torch.nn.Module) -> tuple[int, int, int]:
    """Unique parameter bytes, trainable bytes and trainable tensors, counted here."""
    unique = {p.data_ptr(): p for p in model.parameters()}
    params = sum(p.numel() * p.element_size() for p in unique.values())
    trainable = [p for p in unique.values() if p.requires_grad]
    return params, sum(p.numel() * p.element_size() for p in trainable), len(trainable)


@pytest.mark.parametrize("sample", ["mlp.py", "mnist_cnn.py", "gpt_decoder.py"])
def test_parameters_gradients_and_adam_state_are_exact(sample: str, tmp_path: Path) -> None:
    section, subject = _memory(ROOT / "sample_models" / sample, tmp_path)
    t = section.timeline
    assert t is not None
    params, trainable, tensors = _hand_counts(subject.model)
    assert t.max_by_category["parameter"] == params
    assert t.at_phase_end["backward"]["gradient"] == trainable
    # AdamW: exp_avg and exp_avg_sq per parameter, plus a float32 step counter per tensor.
    assert t.max_by_category["optimizer_state"] == 2 * trainable + 4 * tensors
    assert all(c.agrees for c in t.checks[:3])
    # Parameters and optimizer state among the largest tensors carry their name and shape.
    names = {n for n, _ in subject.model.named_parameters()}
    for x in t.largest_at_peak:
        if x.category in ("parameter", "optimizer_state"):
            assert x.op.split(" of ")[-1] in names and x.shape
    # The most activation bytes alive at once, against the memory stage's own tracker.
    estimate = section.training.peak_forward_bytes
    assert abs(t.max_by_category["activation"] - estimate) <= 0.25 * estimate


def test_the_peak_is_the_sum_of_what_is_alive_and_survives_downsampling(tmp_path: Path) -> None:
    section, _ = _memory(ROOT / "sample_models" / "gpt_decoder.py", tmp_path)
    t = section.timeline
    assert [p.name for p in t.phases] == ["forward", "backward", "optimizer"]
    assert all(a.end_us <= b.start_us for a, b in zip(t.phases, t.phases[1:], strict=False))
    assert t.peak_bytes == sum(t.at_peak_by_category.values())
    assert len(t.times_us) == len(t.samples) <= 400
    assert max(sum(s) for s in t.samples) == t.peak_bytes
    assert t.peak_phase in {"forward", "backward", "optimizer"}
    # Activations are named with the module that made them.
    assert any(m.startswith("blocks.") for m in t.activations_by_module)
    assert sum(t.activations_by_module.values()) <= t.activation_peak_bytes


def test_downsample_keeps_the_highest_point_of_each_bin() -> None:
    from reporter.profiling.memory_timeline import downsample

    points = [(float(i), [i % 7, 0]) for i in range(1000)] + [(1000.0, [99, 1])]
    times, samples = downsample(points, 50)
    assert len(times) <= 50
    assert max(sum(s) for s in samples) == 100


def _timeline(**by_category: int) -> MemoryTimeline:
    return MemoryTimeline(
        categories=list(by_category),
        peak_bytes=sum(by_category.values()),
        at_peak_by_category=dict(by_category),
        activations_by_module={"blocks.3": 600, "blocks.2": 200, "(outside modules)": 50},
        largest_at_peak=[LiveTensor(300, "unknown", op="aten::_foreach_sqrt")],
        optimizer="AdamW",
    )


def _report(t: MemoryTimeline) -> Report:
    from reporter.report import MemorySection

    memory = MemorySection(0, 0, 0, 0, 0, 0, timeline=t)
    return Report(model=ModelInfo("M", "m.py"), memory=memory)


def test_rules_name_what_fills_the_peak() -> None:
    from reporter.rules import run_rules

    findings = {f.rule: f for f in run_rules(_report(_timeline(activation=850, parameter=150)))}
    act = findings["activations-dominate-peak"]
    assert act.target == "blocks.3" and "800" in act.evidence["checkpointing_could_save"]
    assert "optimizer-state-dominates-peak" not in findings
    findings = {
        f.rule
        for f in run_rules(_report(_timeline(optimizer_state=500, parameter=250, unknown=300)))
    }
    assert {"optimizer-state-dominates-peak", "temporary-memory-spike"} <= findings
    assert "activations-dominate-peak" not in findings


def test_the_chart_marks_phases_and_the_peak() -> None:
    from reporter.render.charts import stacked_area

    svg = stacked_area(
        [0.0, 1.0, 2.0],
        [("<b>", [1, 2, 1], None), ("act", [0, 3, 0], None)],
        marks=[("forward", 0.0, 1.0)],
        peak=(1.0, 5.0),
    )
    assert svg.count("<polygon") == 2 and "peak 5" in svg and "forward" in svg
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def _torch_categories(prof: Any, record: Any) -> Counter:
    """Bytes allocated in the step by (torch's category, perfreport's category): torch's
    memory profiler (its data-flow analysis, with the Python tracer) on the same events."""
    from torch._C._profiler import _EventType
    from torch.profiler._memory_profiler import MemoryProfile, TensorKey

    from reporter.profiling.memory_timeline import categorise, phases_of

    torch_profile = MemoryProfile(prof.profiler.kineto_results)
    ours = {
        (a.ptr, a.start_ns): a.category
        for a in categorise(record, torch.device("cpu"), phases_of(record.events))
    }
    pairs: Counter = Counter()
    for e in record.events:
        if e.typed[0] != _EventType.Allocation or e.typed[1].alloc_size <= 0:
            continue
        key = TensorKey.from_allocation(e.typed[1])
        theirs = torch_profile._categories.get(key, 0) if key is not None else None
        name = theirs.name.lower() if theirs is not None else "unknown"
        pairs[(name, ours[(e.typed[1].ptr, e.start_time_ns)])] += e.typed[1].alloc_size
    return pairs


@pytest.mark.parametrize("sample", ["mlp.py", "mnist_cnn.py", "gpt_decoder.py"])
def test_categories_agree_with_torchs_memory_profiler(sample: str, tmp_path: Path) -> None:
    """Where torch's own analysis names a category, perfreport names the same one for
    (almost) every byte; what torch leaves unknown is the optimizer's intermediates."""
    from torch.profiler import ProfilerActivity, profile

    from reporter.profiling.memory_timeline import step_record
    from reporter.profiling.scopes import module_scopes
    from reporter.profiling.train_step import train_step

    subject = subject_for(ROOT / "sample_models" / sample, tmp_path)
    step = train_step(subject)
    step.run()
    with (
        module_scopes(step.model),
        profile(
            activities=[ProfilerActivity.CPU],
            profile_memory=True,
            record_shapes=True,
            with_stack=True,
        ) as prof,
    ):
        step.run()
    record = step_record(prof, step.model, step.optimizer, (subject.args, subject.kwargs), "one")
    pairs = _torch_categories(prof, record)
    named = {k: v for k, v in pairs.items() if k[0] != "unknown"}
    agree = sum(v for (theirs, ours), v in named.items() if theirs == ours)
    assert agree >= 0.99 * sum(named.values()), named
    # Gradients exactly: every byte torch calls a gradient is one here, and no other.
    assert sum(v for (t, o), v in pairs.items() if "gradient" in (t, o) and t != o) == 0
    assert pairs[("gradient", "gradient")] > 0 and pairs[("activation", "activation")] > 0
    # torch's unknowns: AdamW's per-step intermediates, freed by the step's end.
    unknown = sum(v for (t, _), v in pairs.items() if t == "unknown")
    assert pairs[("unknown", "temporary")] >= 0.9 * unknown


def test_the_timeline_reads_the_profile_stages_last_training_step(tmp_path: Path) -> None:
    """With the profile stage in the run, the timeline is its last recorded step: no step
    of its own, and the same exact figures."""
    from reporter.options import RunOptions
    from reporter.profiling.memory_timeline import TRAINING_STEP

    subject = subject_for(ROOT / "sample_models" / "gpt_decoder.py", tmp_path)
    opts = RunOptions(
        model_file=subject.source,
        out_dir=str(tmp_path),
        stages=["profile", "memory"],
        train=True,
    )
    ctx = StageContext(subject=subject, options=opts)
    run_stage("profile", ctx)
    assert TRAINING_STEP in ctx.cache
    section = run_stage("memory", ctx)
    assert TRAINING_STEP not in ctx.cache  # read once, then let go
    t = section.timeline
    assert t.method.startswith("The profile stage's last training step")
    # What it cost is measured and said: keeping the events, categorising, checking.
    assert t.seconds > 0 and f"added {t.seconds:.2f} s to the run" in t.method
    params, trainable, tensors = _hand_counts(subject.model)
    assert t.max_by_category["parameter"] == params
    assert t.at_phase_end["backward"]["gradient"] == trainable
    assert t.max_by_category["optimizer_state"] == 2 * trainable + 4 * tensors
    assert [p.name for p in t.phases] == ["forward", "backward", "optimizer"]
    estimate = section.training.peak_forward_bytes
    assert abs(t.max_by_category["activation"] - estimate) <= 0.25 * estimate
