"""Module graph: structure recorded from the real run, folding, depth budget, escaping, files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import SAMPLES
from helpers import subject_for
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reporter.graph.build import build_graph
from reporter.graph.dot import render
from reporter.options import RunOptions
from reporter.report import GraphSection, from_data, to_data
from reporter.stages import SkipStage, StageContext, run_stage

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
BAD_NAME = "<script>alert(1)</script>"


def by_name(section: GraphSection) -> dict[str, list]:
    out: dict[str, list] = {}
    for n in section.nodes:
        out.setdefault(n.name, []).append(n)
    return out


def edge_set(section: GraphSection) -> set[tuple[str, str]]:
    names = {n.id: n.name for n in section.nodes}
    return {(names[e.src], names[e.dst]) for e in section.edges}


def edge_shapes(section: GraphSection, src: str, dst: str) -> list[list[int]]:
    ids = {n.name: n.id for n in section.nodes}
    return next(e.shapes for e in section.edges if e.src == ids[src] and e.dst == ids[dst])


def stage_ctx(subject, tmp: Path, **graph_options) -> StageContext:  # noqa: ANN001
    opts = RunOptions(
        model_file=subject.source,
        out_dir=str(tmp),
        stages=["graph"],
        stage_options={"graph": graph_options},
    )
    return StageContext(subject=subject, options=opts)


# ------------------------------------------------------------------ sample models
def test_mnist_graph_is_the_forward_chain_with_shapes(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "mnist_cnn.py", tmp_path)
    model, (x,) = subject.model, subject.args
    section = build_graph(model, subject.args, subject.kwargs).section
    # The forward, read off the sample's source: modules and the functional calls between.
    order = [
        "input",
        "conv1",
        "relu",
        "conv2",
        "relu",
        "max_pool2d",
        "dropout1",
        "flatten",
        "fc1",
        "relu",
        "dropout2",
        "fc2",
        "log_softmax",
        "output",
    ]
    assert [n.name for n in section.nodes] == order
    assert len(section.edges) == len(order) - 1  # one chain
    assert section.clusters == [] and section.folds == []
    # shapes on the edges, computed here by running the layers by hand
    with torch.no_grad():
        c1 = model.conv1(x)
        c2 = model.conv2(torch.relu(c1))
        flat = torch.flatten(torch.max_pool2d(torch.relu(c2), 2), 1)
        f1 = model.fc1(flat)
    nodes = section.nodes
    shapes = [e.shapes for e in section.edges]
    assert shapes[0] == [list(x.shape)]
    assert shapes[1] == [list(c1.shape)]  # conv1 -> relu
    assert shapes[3] == [list(c2.shape)]  # conv2 -> relu
    assert shapes[7] == [list(flat.shape)]  # flatten -> fc1
    assert (nodes[7].name, nodes[8].name) == ("flatten", "fc1")
    assert shapes[8] == [list(f1.shape)]
    # parameters per node, and the hottest by parameters is fc1 (97% of them)
    names = by_name(section)
    assert names["fc1"][0].cost == sum(p.numel() for p in model.fc1.parameters())
    assert names["conv2"][0].cost == model.conv2.weight.numel() + model.conv2.bias.numel()
    ranked = sorted(
        (
            (n, sum(p.numel() for p in getattr(model, n).parameters()))
            for n in ("conv1", "conv2", "fc1", "fc2")
        ),
        key=lambda t: -t[1],
    )
    assert {n.name: n.rank for n in section.nodes if n.rank} == {
        name: i + 1 for i, (name, _) in enumerate(ranked[:3])
    }


def test_recording_leaves_no_global_module_hook_behind() -> None:
    # A stale global hook makes torch.compile (the deploy stage) warn and changes behaviour.
    from torch.nn.modules.module import _has_any_global_hook

    from reporter.graph.record import record

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    record(model, (torch.randn(2, 3),), {})
    assert not _has_any_global_hook()


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_every_sample_model_graph_is_connected_and_fits_the_budget(
    path: Path, tmp_path: Path
) -> None:
    subject = subject_for(path, tmp_path)
    section = build_graph(subject.model, subject.args, subject.kwargs, budget=60).section
    # ops are recorded only when fed by recorded tensors; every node but the output feeds
    # another (a module may take a constant, e.g. position ids, and have no edge in)
    ids = {n.id for n in section.nodes}
    fed = {e.dst for e in section.edges}
    feeding = {e.src for e in section.edges}
    assert all(e.src in ids and e.dst in ids for e in section.edges)
    for n in section.nodes:
        if n.kind in ("op", "output"):
            assert n.id in fed, n.name
        if n.kind != "output":
            assert n.id in feeding, n.name
    # the automatic depth is the deepest that fits the budget
    counts = {int(d): c for d, c in section.nodes_by_depth.items()}
    assert len(section.nodes) == counts[section.depth] <= 60
    assert section.depth == section.max_depth or counts[section.depth + 1] > 60
    # every leaf module that ran is inside some node: parameters add up to the model's
    # (per module; tied weights count in each module holding them)
    if section.depth == section.max_depth:
        ran = _leaf_modules_that_ran(subject)
        total = sum(sum(p.numel() for p in m.parameters()) for m in ran.values())
        assert sum(n.cost for n in section.nodes) == total


def _without_timings(section: GraphSection) -> dict:
    data = to_data(section)
    return {k: v for k, v in data.items() if k not in ("record_seconds", "layout_seconds")}


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_graph_recorded_in_the_shared_pass_equals_one_recorded_alone(
    path: Path, tmp_path: Path
) -> None:
    alone = run_stage("graph", stage_ctx(subject_for(path, tmp_path), tmp_path))
    assert alone.record_seconds > 0
    ctx = stage_ctx(subject_for(path, tmp_path), tmp_path)
    ctx.options.stages = ["summary", "graph"]
    run_stage("summary", ctx)
    shared = run_stage("graph", ctx)
    assert shared.record_seconds == 0  # no forward of its own
    assert _without_timings(shared) == _without_timings(alone)


def test_a_recorder_failure_in_the_shared_pass_costs_neither_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reporter.stages.passes as passes

    def broken(*args: object) -> object:
        raise RuntimeError("recorder broke")

    monkeypatch.setattr(passes, "recording", broken)
    ctx = stage_ctx(subject_for(SAMPLES / "mlp.py", tmp_path), tmp_path)
    ctx.options.stages = ["summary", "graph"]
    summary = run_stage("summary", ctx)
    assert summary.layers and ctx.cache["inference_pass"].recording is None
    graph = run_stage("graph", ctx)
    assert graph.record_seconds > 0 and graph.nodes  # it recorded on its own


def _leaf_modules_that_ran(subject) -> dict[str, nn.Module]:  # noqa: ANN001
    """Independently of the recorder: forward hooks on the leaves, one plain run."""
    ran: dict[str, nn.Module] = {}
    handles = []
    for name, m in subject.model.named_modules():
        if next(m.children(), None) is None:
            handles.append(
                m.register_forward_hook(lambda mod, a, o, name=name: ran.update({name: mod}))
            )
    with torch.no_grad():
        subject.call()
    for h in handles:
        h.remove()
    return ran


def test_resnet18_blocks_fold_only_where_identical(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "resnet18.py", tmp_path)
    section = build_graph(subject.model, subject.args, subject.kwargs, depth=2).section
    # layer1's two blocks have the same shapes: folded; the first block of layer2..4
    # downsamples, so those differ from their second block and stay apart.
    assert [(f.first, f.last, f.repeats) for f in section.folds] == [("layer1.0", "layer1.1", 2)]
    names = by_name(section)
    fold = names["layer1.0 … layer1.1"][0]
    assert fold.repeats == 2
    assert fold.cost == sum(p.numel() for p in subject.model.layer1.parameters())
    for layer in ("layer2", "layer3", "layer4"):
        assert f"{layer}.0" in names and f"{layer}.1" in names
    # the residual stream keeps its shape into layer2: 64 channels at 1/4 of the input size
    x = subject.args[0]
    assert edge_shapes(section, "layer1.0 … layer1.1", "layer2.0") == [
        [x.shape[0], 64, x.shape[2] // 4, x.shape[3] // 4]
    ]


# ------------------------------------------------------------------ GPT-2 from config
@pytest.fixture(scope="module")
def gpt2():  # noqa: ANN201
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    cfg = transformers.GPT2Config(n_layer=3, n_embd=64, n_head=2, vocab_size=100)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 100, (2, 8))
    return model, ids


def test_gpt2_blocks_fold_and_show_one_inside(gpt2) -> None:  # noqa: ANN001
    model, ids = gpt2
    n_layer = len(model.transformer.h)
    section = build_graph(model, (), {"input_ids": ids}).section
    assert [(f.first, f.last, f.type, f.repeats) for f in section.folds] == [
        ("transformer.h.0", f"transformer.h.{n_layer - 1}", "GPT2Block", n_layer)
    ]
    fold_cluster = next(c for c in section.clusters if c.repeats == n_layer)
    inside = _nodes_under(section, fold_cluster.id)
    # the inside of one block, drawn once: exactly the leaf modules of h.0 that ran
    ran = set(_leaf_modules_that_ran_gpt(model, ids))
    drawn = {n.name for n in inside if n.kind == "module"}
    assert drawn == {name for name in ran if name.startswith("transformer.h.0.")}
    assert not any(n.name.startswith("transformer.h.1") for n in section.nodes)
    # unfolded, the same depth draws every block: (n_layer - 1) more copies of the inside
    unfolded = build_graph(
        model, (), {"input_ids": ids}, depth=section.depth, fold_repeats=False
    ).section
    assert len(unfolded.nodes) - len(section.nodes) == (n_layer - 1) * len(inside)
    assert len(unfolded.edges) > len(section.edges)
    # costs of the nodes inside add up all repeats: c_fc's node holds every block's c_fc
    c_fc = next(n for n in inside if n.name == "transformer.h.0.mlp.c_fc")
    assert c_fc.instances == n_layer
    assert c_fc.cost == sum(
        sum(p.numel() for p in b.mlp.c_fc.parameters()) for b in model.transformer.h
    )
    # shapes on edges: embeddings into the blocks, the head out to the output
    batch, seq = ids.shape
    width, vocab = model.config.n_embd, model.config.vocab_size
    assert edge_shapes(section, "transformer.drop", "transformer.h.0.ln_1") == [[batch, seq, width]]
    assert edge_shapes(section, "lm_head", "output") == [[batch, seq, vocab]]
    # the block's output feeds the next block, which the × N says: no edge back into ln_1
    ln_1_sources = {s for s, d in edge_set(section) if d == "transformer.h.0.ln_1"}
    assert ln_1_sources == {"transformer.drop"}
    ln_f_sources = {s for s, d in edge_set(section) if d == "transformer.ln_f"}
    assert ln_f_sources == {"add"}


def test_gpt2_shallow_depth_draws_the_fold_as_one_node(gpt2) -> None:  # noqa: ANN001
    model, ids = gpt2
    section = build_graph(model, (), {"input_ids": ids}, depth=2).section
    n_layer = len(model.transformer.h)
    fold = next(n for n in section.nodes if n.repeats > 1)
    assert fold.repeats == n_layer
    assert fold.name == f"transformer.h.0 … transformer.h.{n_layer - 1}"
    assert fold.cost == sum(p.numel() for p in model.transformer.h.parameters())
    assert edge_set(section) >= {
        ("transformer.drop", fold.name),
        (fold.name, "transformer.ln_f"),
        ("transformer.ln_f", "lm_head"),
        ("lm_head", "output"),
    }


def _nodes_under(section: GraphSection, cluster: str) -> list:
    parents = {c.id: c.parent for c in section.clusters}

    def inside(cid: str | None) -> bool:
        while cid is not None:
            if cid == cluster:
                return True
            cid = parents.get(cid)
        return False

    return [n for n in section.nodes if inside(n.cluster)]


def _leaf_modules_that_ran_gpt(model: nn.Module, ids: torch.Tensor) -> list[str]:
    ran: list[str] = []
    handles = [
        m.register_forward_hook(lambda mod, a, o, name=name: ran.append(name))
        for name, m in model.named_modules()
        if next(m.children(), None) is None
    ]
    with torch.no_grad():
        model(input_ids=ids)
    for h in handles:
        h.remove()
    return ran


# ------------------------------------------------------------------ folding and control flow
class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.norm(self.fc(x)))


def test_flat_repeating_pattern_folds_with_period_three() -> None:
    blocks = 40
    layers = []
    for _ in range(blocks):
        layers += [nn.Linear(16, 16), nn.LayerNorm(16), nn.GELU()]
    model = nn.Sequential(*layers).eval()
    section = build_graph(model, (torch.randn(2, 16),), {}, depth=2).section
    assert [(f.first, f.last, f.type, f.repeats) for f in section.folds] == [
        ("0", str(3 * blocks - 1), "Linear, LayerNorm, GELU", blocks)
    ]
    # drawn open: input, the three layers of one repeat, output
    assert [n.name for n in section.nodes] == ["input", "0", "1", "2", "output"]
    assert [n.type for n in section.nodes[1:4]] == ["Linear", "LayerNorm", "GELU"]
    assert section.nodes[1].cost == blocks * (16 * 16 + 16)  # every repeat's Linear
    assert len(section.edges) == 4


def test_thousand_block_stack_stays_within_budget() -> None:
    blocks = 1000
    model = nn.Sequential(*[Block(8) for _ in range(blocks)]).eval()
    section = build_graph(model, (torch.randn(2, 8),), {}, budget=60).section
    assert section.calls_recorded == 1 + blocks * 5  # root, block, fc, norm, relu, add
    assert [f.repeats for f in section.folds] == [blocks]
    assert len(section.nodes) <= 60
    # deep enough to see the inside of one block: fc, norm, relu and the residual add
    assert {n.name for n in section.nodes} == {"input", "0.fc", "0.norm", "relu", "add", "output"}
    assert edge_set(section) == {
        ("input", "0.fc"),
        ("input", "add"),  # the residual of block 0 (the input of every block)
        ("0.fc", "0.norm"),
        ("0.norm", "relu"),
        ("relu", "add"),
        ("add", "output"),
    }


def test_parallel_lookalikes_do_not_fold() -> None:
    class QKV(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.q(x) * self.k(x) + self.v(x)

    section = build_graph(QKV().eval(), (torch.randn(2, 8),), {}).section
    assert section.folds == []
    assert {"q", "k", "v"} <= set(by_name(section))
    assert {("input", "q"), ("input", "k"), ("input", "v")} <= edge_set(section)


class Shrink(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace `while x.norm() > 1`."""

    def __init__(self) -> None:
        super().__init__()
        self.step = nn.Linear(4, 4)
        with torch.no_grad():
            self.step.weight.copy_(torch.eye(4) * 0.5)
            self.step.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.norm() > 1:
            x = self.step(x)
        if x.sum() > 0:
            return torch.tanh(x)
        return torch.sigmoid(x)


def test_data_dependent_control_flow_draws_what_ran() -> None:
    model = Shrink().eval()
    x = torch.full((1, 4), 4.0)  # norm 8: halved 4 times down to 0.5
    with pytest.raises(Exception):  # noqa: B017 - fx's own error type varies by version
        torch.fx.symbolic_trace(model)
    section = build_graph(model, (x,), {}).section
    steps = 0
    y = x
    while y.norm() > 1:
        y = y * 0.5
        steps += 1
    assert [(f.first, f.repeats) for f in section.folds] == [("step", steps)]
    assert [n.name for n in section.nodes] == ["input", "step … step", "tanh", "output"]
    assert section.nodes[1].repeats == steps


# ------------------------------------------------------------------ escaping, files, stage
class Named(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module(BAD_NAME, nn.Linear(4, 4))
        self.add_module('q"uote\\', nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.children():
            x = m(x)
        return x


@needs_dot
def test_user_names_are_escaped_in_dot_and_svg(tmp_path: Path) -> None:
    built = build_graph(Named().eval(), (torch.randn(2, 4),), {})
    assert BAD_NAME in {n.name for n in built.section.nodes}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in built.dot
    assert "<script" not in built.dot
    svg = render(built.dot, ["svg"])["svg"].decode()
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "q&quot;uote" in svg
    assert "&amp;lt;" not in svg  # escaped once, not twice


@needs_dot
def test_stage_writes_files_and_inline_svg(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "mnist_cnn.py", tmp_path)
    ctx = stage_ctx(subject, tmp_path, format="png", depth=1)
    section = run_stage("graph", ctx)
    assert section.svg.startswith("<svg") and "<?xml" not in section.svg
    assert section.files == {"dot": "graph.dot", "svg": "graph.svg", "png": "graph.png"}
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "graph.svg").read_text().count('<g id="node') == len(section.nodes)
    assert (tmp_path / "graph.dot").read_text().startswith("digraph G {")
    assert not section.depth_auto and section.depth == 1
    assert section.metric == "parameters"
    # the section survives JSON
    again = from_data(GraphSection, to_data(section))
    assert again == section


@needs_dot
def test_stage_colours_by_flops_when_the_flops_stage_ran(tmp_path: Path) -> None:
    subject = subject_for(SAMPLES / "mnist_cnn.py", tmp_path)
    ctx = stage_ctx(subject, tmp_path, format="pdf")
    ctx.sections["flops"] = run_stage("flops", ctx)
    section = run_stage("graph", ctx)
    assert section.metric == "FLOPs"
    assert (tmp_path / "graph.pdf").read_bytes()[:5] == b"%PDF-"
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        subject.call()
    counts = counter.get_flop_counts()
    root = type(subject.model).__name__
    expected = {
        name: sum(counts[f"{root}.{name}"].values()) for name in ("conv1", "conv2", "fc1", "fc2")
    }
    costs = {n.name: n.cost for n in section.nodes if n.name in expected}
    assert costs == expected
    top3 = sorted(expected, key=lambda k: -expected[k])[:3]
    assert {n.name: n.rank for n in section.nodes if n.rank} == {
        k: i + 1 for i, k in enumerate(top3)
    }


def test_stage_skips_with_the_package_name_when_dot_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = subject_for(SAMPLES / "mlp.py", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    with pytest.raises(SkipStage, match="graphviz"):
        run_stage("graph", stage_ctx(subject, tmp_path))
    assert not (tmp_path / "graph.svg").exists()


def test_cli_flags_reach_the_stage_options() -> None:
    from reporter.cli import parse_run_options
    from reporter.errors import UsageError

    model = str(SAMPLES / "mlp.py")
    options, _ = parse_run_options(
        [model, "--graph-depth", "2", "--graph-format", "pdf", "--graph-colour", "flops"]
    )
    assert options.stage_options["graph"] == {"depth": 2, "format": "pdf", "colour": "flops"}
    options, _ = parse_run_options([model])
    assert options.stage_options["graph"] == {"depth": None, "format": "svg", "colour": "auto"}
    with pytest.raises(UsageError, match="--graph-depth"):
        parse_run_options([model, "--graph-depth", "0"])
    with pytest.raises(UsageError, match="graph-format"):
        parse_run_options([model, "--graph-format", "gif"])


@needs_dot
def test_report_with_a_hostile_module_name(cli, model_file, tmp_path: Path) -> None:  # noqa: ANN001
    path = model_file(
        f"""
        import torch
        from torch import nn

        def build_model():
            m = nn.Sequential()
            m.add_module({BAD_NAME!r}, nn.Linear(4, 4))
            m.add_module("act", nn.ReLU())
            return m

        example_input = torch.randn(2, 4)
        """
    )
    out = tmp_path / "out"
    result = cli(path, "-o", out, "--only", "graph", "--graph-format", "png")
    assert result.code == 0, result.err
    html = (out / "report.html").read_text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<section id="graph">' in html
    assert "<svg" in html
    md = (out / "report.md").read_text()
    assert "[graph.svg](graph.svg)" in md
    assert "<script>" not in md
    for name in ("graph.dot", "graph.svg", "graph.png"):
        assert (out / name).stat().st_size > 0


def test_unfoldable_model_is_cut_at_the_node_limit() -> None:
    """500 layers of different widths: nothing folds, so the hard node limit bounds dot."""
    from reporter.graph.build import MAX_NODES

    layers = 500
    model = nn.Sequential(*[nn.Linear(4 + i, 5 + i) for i in range(layers)]).eval()
    section = build_graph(model, (torch.randn(1, 4),), {}).section
    assert section.folds == []
    assert section.nodes_by_depth == {"1": layers + 2}  # input, layers, output
    assert len(section.nodes) == MAX_NODES
    assert section.dropped_nodes == layers + 2 - MAX_NODES
    assert [n.name for n in section.nodes[:3]] == ["input", "0", "1"]
    # shapes follow the widths: layer i maps 4 + i features to 5 + i
    assert section.edges[1].shapes == [[1, 5]]
    # the last node drawn is layer MAX_NODES - 2 (after the input), fed by layer MAX_NODES - 3
    assert section.nodes[-1].name == str(MAX_NODES - 2)
    assert section.edges[-1].shapes == [[1, 5 + MAX_NODES - 3]]


@needs_dot
def test_colour_by_time_from_profile_module_times(gpt2) -> None:  # noqa: ANN001
    from reporter.graph.recolour import colour_by_time
    from reporter.report.profile import ModuleTime, ProfileSection

    model, ids = gpt2
    section = build_graph(model, (), {"input_ids": ids}).section
    n_layer = len(model.transformer.h)
    # per-step times as the profile stage writes them (µs, inclusive of children)
    fc_us = [100.0 * (i + 1) for i in range(n_layer)]
    modules = [
        ModuleTime(f"transformer.h.{i}.mlp.c_fc", "Conv1D", 4, 1, us, us)
        for i, us in enumerate(fc_us)
    ]
    modules += [
        ModuleTime("lm_head", "Linear", 1, 1, 50.0, 50.0),
        ModuleTime("transformer.wte", "Embedding", 2, 1, 20.0, 20.0),
        # the block itself: not a node at this depth, its children are
        ModuleTime("transformer.h.0", "GPT2Block", 2, 1, 9999.0, 9999.0),
    ]
    profile = ProfileSection(mode="inference", device="cpu", trace_files=[], modules=modules)
    timed = colour_by_time(section, profile)
    assert timed is not None and timed.metric == "time"
    cost = {n.name: n.cost for n in timed.nodes}
    assert cost["transformer.h.0.mlp.c_fc"] == pytest.approx(sum(fc_us) / 1000)  # all repeats
    assert cost["lm_head"] == pytest.approx(0.05)
    assert cost["transformer.h.0.ln_1"] == 0
    ranks = {n.name: n.rank for n in timed.nodes if n.rank}
    assert ranks == {"transformer.h.0.mlp.c_fc": 1, "lm_head": 2, "transformer.wte": 3}
    assert "colour: time" in timed.svg and timed.svg.startswith("<svg")
    # same drawing otherwise; no time for any node: nothing to recolour
    assert [n.id for n in timed.nodes] == [n.id for n in section.nodes]
    assert timed.edges == section.edges
    empty = ProfileSection(mode="inference", device="cpu", trace_files=[], modules=[])
    assert colour_by_time(section, empty) is None


def test_transformer_encoder_folds_and_attention_keeps_its_parameters() -> None:
    """nn.MultiheadAttention calls one function on its own weights: it stays one node."""
    width, n_layers = 16, 3
    layer = nn.TransformerEncoderLayer(width, 2, 32, batch_first=True)
    model = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False).eval()
    x = torch.randn(2, 5, width)
    section = build_graph(model, (x,), {}).section
    assert [(f.first, f.last, f.repeats) for f in section.folds] == [
        ("layers.0", f"layers.{n_layers - 1}", n_layers)
    ]
    attn = by_name(section)["layers.0.self_attn"][0]
    assert attn.type == "MultiheadAttention" and attn.instances == n_layers
    assert attn.cost == sum(
        sum(p.numel() for p in blk.self_attn.parameters()) for blk in model.layers
    )
    assert not any(n.kind == "op" and "attention" in n.name for n in section.nodes)
    assert ("input", "layers.0.self_attn") in edge_set(section)
    assert edge_shapes(section, "input", "layers.0.self_attn") == [list(x.shape)]
