"""The catalogue of bad inputs: each gives one line on stderr, exit code 2, no traceback,
and loses nothing (an earlier report in the output folder is left as it was)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

MNIST_LIKE = """
import torch
from torch import nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))
"""

GOOD = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))

def example_inputs():
    return torch.randn(2, 4)
"""


class Custom:
    """Pickled into an --input file: loading it would need unsafe unpickling."""

    def __init__(self) -> None:
        self.x = torch.ones(2)


def _files(tmp: Path) -> dict[str, Path]:
    """Model files and inputs used by the cases below."""
    files = {
        "good": GOOD,
        "mnist": MNIST_LIKE + "\ndef example_inputs():\n    return torch.randn(8, 1, 28, 28)\n",
        "syntax": "import torch\n\ndef build_model(:\n    pass\n",
        "imports": "import torch\nimport nonexistent_pkg_xyz\n",
        "empty": "import torch\nx = 1\n",
        "two": "from torch import nn\nclass A(nn.Linear):\n    def __init__(self):\n        super().__init__(2, 2)\n"
        "class B(nn.Linear):\n    def __init__(self):\n        super().__init__(2, 2)\n",
        "raises": "def build_model():\n    raise ValueError('weights folder not found')\n",
        "notmodule": "def build_model():\n    return 42\n",
        "noinput": "from torch import nn\nmodel = nn.Linear(2, 2)\n",
        "atimport": "x = 1\nraise RuntimeError('boom at import')\n",
        "exits": "import sys\nsys.exit(4)\n",
        "hardexit": "import os\nos._exit(7)\n",
        "rank": GOOD.replace("torch.randn(2, 4)", "torch.randn(2, 4, 4, 4, 4)").replace(
            "nn.Linear(4, 3)", "nn.Conv2d(4, 3, 1)"
        ),
        "dtype": GOOD.replace("torch.randn(2, 4)", "torch.ones(2, 4, dtype=torch.long)"),
    }
    paths = {}
    for name, source in files.items():
        paths[name] = tmp / f"{name}.py"
        paths[name].write_text(source)
    paths["dir"] = tmp / "adir"
    paths["dir"].mkdir()
    paths["txt"] = tmp / "model.txt"
    paths["txt"].write_text(GOOD)
    paths["binary"] = tmp / "binary.py"
    paths["binary"].write_bytes(b"\x7fELF\x00\x01\x02")
    torch.save(42, tmp / "int.pt")
    torch.save(Custom(), tmp / "unsafe.pt")
    (tmp / "garbage.pt").write_bytes(b"not a torch file at all")
    torch.save({"0.weight": torch.zeros(3, 4)}, tmp / "missing.pt")
    good_state = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.save({**good_state.state_dict(), "extra.bias": torch.zeros(1)}, tmp / "unexpected.pt")
    wrong = good_state.state_dict()
    wrong["0.weight"] = torch.zeros(5, 4)
    torch.save(wrong, tmp / "shape.pt")
    torch.save([1, 2, 3], tmp / "notstate.pt")
    (tmp / "afile").write_text("x")
    newer = {"schema_version": 999, "model": {"class_name": "X", "source": "x"}}
    (tmp / "newer.json").write_text(json.dumps(newer))
    (tmp / "broken.json").write_text('{"schema_version": 1, "mod')
    (tmp / "other.json").write_text('{"hello": 1}')
    (tmp / "good.json").write_text(
        json.dumps({"schema_version": 1, "model": {"class_name": "X", "source": "x"}})
    )
    traces = tmp / "traces"
    traces.mkdir()
    (tmp / "empty_traces").mkdir()
    (traces / "empty.pt.trace.json").write_text("")
    (tmp / "cut.pt.trace.json").write_text(
        '{"traceEvents": [{"ph": "X", "name": "aten::mm", "ts": 1'
    )
    import gzip

    (tmp / "cut.json.gz").write_bytes(gzip.compress(b'{"traceEvents": []}' * 50)[:40])
    return paths


# (case id, argv with {name} placeholders, words the message must contain)
CASES = [
    ("missing-file", ["{tmp}/nope.py"], ["nope.py", "no such file"]),
    ("directory", ["{dir}"], ["is a directory"]),
    ("not-python-suffix", ["{txt}"], ["not a Python file"]),
    ("binary", ["{binary}"], ["not Python source"]),
    ("syntax-error", ["{syntax}"], ["syntax.py:3", "syntax error"]),
    ("import-error", ["{imports}"], ["nonexistent_pkg_xyz", "install"]),
    ("no-model", ["{empty}"], ["no model found", "build_model()"]),
    ("several-models", ["{two}"], ["several models", "A, B", "--model"]),
    (
        "factory-raises",
        ["{raises}"],
        ["build_model()", "ValueError", "weights folder not found", "line 2"],
    ),
    ("factory-not-module", ["{notmodule}"], ["returned int", "not an nn.Module"]),
    ("raises-at-import", ["{atimport}"], ["RuntimeError", "boom at import", "line 2"]),
    ("sys-exit-at-import", ["{exits}"], ["sys.exit(4)"]),
    ("os-exit-at-import", ["{hardexit}"], ["exited with code 7"]),
    ("no-input", ["{noinput}"], ["no sample input", "--input-shape"]),
    ("model-name-missing", ["{good}", "--model", "Nope"], ["--model Nope", "defines no"]),
    ("wrong-shape", ["{mnist}"], ["`fc1`", "in_features=3136", "(8, 9216)"]),
    (
        "wrong-shape-flag",
        ["{mnist}", "--input-shape", "8,1,52,52"],
        ["`fc1`", "in_features=3136", "(8, 36864)"],
    ),
    ("wrong-rank", ["{rank}"], ["`0`", "Conv2d", "(2, 4, 4, 4, 4)"]),
    ("wrong-dtype", ["{dtype}"], ["`0`", "Linear", "Long"]),
    ("unknown-dtype", ["{good}", "--dtype", "float7"], ["unknown --dtype 'float7'", "bf16"]),
    ("unknown-device", ["{good}", "--device", "tpu"], ["unknown --device 'tpu'", "cpu, cuda"]),
    ("cuda-without-cuda", ["{good}", "--device", "cuda"], ["no CUDA device", "--device cpu"]),
    ("bad-input-shape", ["{good}", "--input-shape", "a,b"], ["--input-shape 'a,b'", "8,3,224,224"]),
    ("zero-input-shape", ["{good}", "--input-shape", "0,4"], ["--input-shape '0,4'"]),
    ("input-missing", ["{good}", "--input", "{tmp}/none.pt"], ["none.pt", "no such file"]),
    ("input-not-tensor", ["{good}", "--input", "{tmp}/int.pt"], ["holds a int", "not a tensor"]),
    (
        "input-unsafe",
        ["{good}", "--input", "{tmp}/unsafe.pt"],
        ["unsafe unpickling", "weights_only=True"],
    ),
    ("input-garbage", ["{good}", "--input", "{tmp}/garbage.pt"], ["not a file torch.save wrote"]),
    (
        "checkpoint-missing-keys",
        ["{good}", "--checkpoint", "{tmp}/missing.pt"],
        ["missing 3 key(s)", "0.bias"],
    ),
    (
        "checkpoint-unexpected",
        ["{good}", "--checkpoint", "{tmp}/unexpected.pt"],
        ["unexpected 1 key(s): extra.bias"],
    ),
    (
        "checkpoint-shape",
        ["{good}", "--checkpoint", "{tmp}/shape.pt"],
        ["size mismatch", "0.weight"],
    ),
    ("checkpoint-not-state", ["{good}", "--checkpoint", "{tmp}/notstate.pt"], ["not a state_dict"]),
    ("checkpoint-unsafe", ["{good}", "--checkpoint", "{tmp}/unsafe.pt"], ["unsafe unpickling"]),
    ("out-is-file", ["{good}", "-o", "{tmp}/afile"], ["is a file", "folder"]),
    ("out-under-file", ["{good}", "-o", "{tmp}/afile/sub"], ["cannot create output folder"]),
    ("unknown-stage", ["{good}", "--only", "summary,magic"], ["unknown stage magic"]),
    ("unknown-format", ["{good}", "--format", "html,docx"], ["unknown docx"]),
    ("bad-depth", ["{good}", "--depth", "0"], ["--depth 0"]),
    ("unknown-option", ["{good}", "--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    (
        "render-newer-schema",
        ["render", "{tmp}/newer.json"],
        ["schema_version 999", "upgrade perfreport"],
    ),
    ("render-broken-json", ["render", "{tmp}/broken.json"], ["not valid JSON"]),
    ("render-not-report", ["render", "{tmp}/other.json"], ["not a perfreport report.json"]),
    ("render-missing", ["render", "{tmp}/none.json"], ["no such file"]),
    ("render-directory", ["render", "{dir}"], ["is a directory"]),
    ("diff-newer-schema", ["diff", "{tmp}/good.json", "{tmp}/newer.json"], ["schema_version 999"]),
    ("diff-missing", ["diff", "{tmp}/none.json", "{tmp}/good.json"], ["none.json", "no such file"]),
    ("trace-missing", ["trace", "{tmp}/no_traces"], ["no_traces"]),
    ("trace-empty-folder", ["trace", "{tmp}/empty_traces"], ["empty_traces"]),
    ("trace-empty-file", ["trace", "{tmp}/traces"], ["empty"]),
    ("trace-truncated-json", ["trace", "{tmp}/cut.pt.trace.json"], ["cut.pt.trace.json"]),
    ("trace-truncated-gzip", ["trace", "{tmp}/cut.json.gz"], ["cut.json.gz"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bad")
    paths = _files(tmp)
    paths["tmp"] = tmp
    return paths


@pytest.mark.parametrize(("case", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(cli, files, tmp_path, case, argv, words) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("previous")
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    if args[0] in ("trace", "diff"):
        args += ["-o", str(out / "sub")]
    elif "-o" not in args and args[0] != "render":
        args += ["-o", str(out), "--only", "summary"] if "--only" not in args else ["-o", str(out)]
    result = cli(*args)
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.startswith("error:")]
    assert len(error_lines) == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in error_lines[0], (word, error_lines[0])
    assert (out / "report.json").read_text() == "previous"  # nothing lost


def test_catalogue_is_large() -> None:
    assert len(CASES) >= 30


def test_debug_shows_traceback(cli, files) -> None:
    result = cli(str(files["good"]), "--dtype", "float7", "--debug")
    assert result.code == 2
    assert "Traceback" in result.err
