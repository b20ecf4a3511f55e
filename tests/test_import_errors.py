"""A model file whose import fails inside a library names the failing statement and the
root of the exception chain in one line (exit 2); --debug shows the whole chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from reporter import import_errors

# A lazy package in the manner of transformers' _LazyModule: the attribute lookup imports
# a submodule, and a failure there is re-raised as a ModuleNotFoundError without a name.
LAZY_INIT = """
import importlib


def __getattr__(name):
    try:
        module = importlib.import_module(".modeling", __name__)
    except (ModuleNotFoundError, RuntimeError) as e:
        raise ModuleNotFoundError(
            f"Could not import module '{name}'. Are this object's requirements defined correctly?"
        ) from e
    return getattr(module, name)
"""

# What torchvision built for another torch does at import: registering a fake kernel for
# an operator its C++ library did not define.
REGISTRATIONS = """
def register_fake(op):
    raise RuntimeError(f"operator {op} does not exist")


register_fake("torchvision::nms")
"""

MODEL = """
import torch
from lazylib import LlamaConfig


def build_model():
    return torch.nn.Linear(2, 2)
"""


def write_package(root: Path, modeling: str) -> None:
    (root / "lazylib").mkdir()
    (root / "lazylib" / "__init__.py").write_text(LAZY_INIT)
    (root / "lazylib" / "modeling.py").write_text(modeling)
    (root / "fakevision").mkdir()
    (root / "fakevision" / "__init__.py").write_text("from fakevision import registrations\n")
    (root / "fakevision" / "registrations.py").write_text(REGISTRATIONS)


@pytest.fixture
def broken_import(tmp_path: Path) -> Path:
    write_package(tmp_path, "import fakevision\n\nLlamaConfig = object\n")
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def test_root_cause_in_one_line(cli, broken_import: Path, tmp_path: Path) -> None:
    result = cli(broken_import, "-o", tmp_path / "out")
    assert result.code == 2
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.err
    line = errors[0]
    assert "line 3 (`from lazylib import LlamaConfig`)" in line
    assert "RuntimeError: operator torchvision::nms does not exist" in line
    assert "fakevision/registrations.py:3" in line  # where the root was raised
    assert "Could not import module 'LlamaConfig'" in line  # what wrapped it
    assert "None" not in line
    assert not (tmp_path / "out" / "report.json").exists()


def test_debug_shows_the_whole_chain(cli, broken_import: Path, tmp_path: Path) -> None:
    result = cli(broken_import, "-o", tmp_path / "out", "--debug")
    assert result.code == 2
    err = result.err
    # The model process's chain, innermost first, as Python prints it.
    root = err.index("RuntimeError: operator torchvision::nms does not exist")
    wrapper = err.index("ModuleNotFoundError: Could not import module 'LlamaConfig'")
    assert root < wrapper
    assert "The above exception was the direct cause of the following exception" in err
    assert 'register_fake("torchvision::nms")' in err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_missing_package_behind_a_lazy_import(cli, tmp_path: Path) -> None:
    """A wrapped ModuleNotFoundError with a name: say which package to install."""
    write_package(tmp_path, "import sentencepiece_not_here_xyz\n")
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    result = cli(path, "-o", tmp_path / "out")
    assert result.code == 2
    assert "cannot import 'sentencepiece_not_here_xyz'" in result.err
    assert "install it" in result.err and "None" not in result.err


def test_nameless_module_not_found_does_not_say_none(cli, tmp_path: Path) -> None:
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "__init__.py").write_text(
        "def __getattr__(name):\n    raise ModuleNotFoundError(f'no {name} here')\n"
    )
    path = tmp_path / "model.py"
    path.write_text("from bare import Thing\n")
    result = cli(path, "-o", tmp_path / "out")
    assert result.code == 2
    assert "line 1 (`from bare import Thing`): ModuleNotFoundError: no Thing here" in result.err
    assert "None" not in result.err


def test_syntax_error_in_an_imported_neighbour_names_that_file(cli, tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("x = 1\n\ndef f(:\n    pass\n")
    path = tmp_path / "model.py"
    path.write_text("import torch\nimport helper\n")
    result = cli(path, "-o", tmp_path / "out")
    assert result.code == 2
    assert f"{tmp_path / 'helper.py'}:3: syntax error" in result.err


def test_build_model_names_the_root(cli, tmp_path: Path) -> None:
    """The same lazy import failing inside build_model() names the root too."""
    write_package(tmp_path, "import fakevision\n")
    path = tmp_path / "model.py"
    path.write_text("def build_model():\n    from lazylib import LlamaConfig\n")
    result = cli(path, "-o", tmp_path / "out")
    assert result.code == 2
    assert "ModuleNotFoundError: Could not import module 'LlamaConfig'" in result.err
    assert "behind it: RuntimeError: operator torchvision::nms does not exist" in result.err


def raise_chain() -> BaseException:
    try:
        try:
            try:
                raise KeyError("inner")
            except KeyError:
                raise ValueError("") from None  # context suppressed, no message
        except ValueError as e:
            raise RuntimeError("middle") from e
    except RuntimeError:
        try:
            raise TypeError("outer")  # implicit context: the RuntimeError
        except TypeError as exc:
            return exc
    raise AssertionError("unreachable")


def test_chain_follows_causes_then_contexts() -> None:
    exc = raise_chain()
    chain = import_errors.exception_chain(exc)
    assert [type(e).__name__ for e in chain] == ["TypeError", "RuntimeError", "ValueError"]
    # The innermost, ValueError(""), says nothing: the root is the one that wrapped it.
    assert str(import_errors.root_cause(exc)) == "middle"


def test_chain_stops_on_a_loop() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert import_errors.exception_chain(a) == [a, b]


def test_control_characters_are_escaped(cli, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text("raise RuntimeError('bad \\x1b[2J news')\n")
    result = cli(path, "-o", tmp_path / "out")
    assert result.code == 2
    assert "\x1b" not in result.err
    assert "RuntimeError: bad \\x1b[2J news" in result.err
