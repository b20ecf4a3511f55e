"""The data side (the Report, the rules, health, the graph builder, budgets) imports no view.

Every import statement is read from the source's syntax tree, those inside functions too,
so a lazy ``from reporter.render... import`` is caught as well as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "reporter"
DATA_SIDE = sorted(
    [
        *(ROOT / "report").glob("*.py"),
        *(ROOT / "rules").glob("*.py"),
        *(ROOT / "health").glob("*.py"),
        ROOT / "graph" / "build.py",
        ROOT / "graph" / "recolour.py",
        ROOT / "budgets.py",
    ]
)
VIEWS = ("reporter.render",)


def imported_modules(source: str) -> list[str]:
    """Every module an import statement names: `import a.b`, `from a.b import c` (as
    a.b and a.b.c, since c may be a module), and `from a import b`."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def view_imports(source: str) -> list[str]:
    return [
        m for m in imported_modules(source) if any(m == v or m.startswith(v + ".") for v in VIEWS)
    ]


def test_the_checker_sees_every_form_of_import() -> None:
    source = (
        "import reporter.render.charts\n"
        "from reporter import render\n"
        "def f():\n"
        "    from reporter.render.format import count\n"
        "from reporter.units import count\n"
    )
    assert view_imports(source) == [
        "reporter.render.charts",
        "reporter.render",
        "reporter.render.format",
        "reporter.render.format.count",
    ]


def test_the_data_side_files_exist() -> None:
    assert len(DATA_SIDE) > 10
    assert all(p.is_file() for p in DATA_SIDE)


@pytest.mark.parametrize("path", DATA_SIDE, ids=lambda p: str(p.relative_to(ROOT)))
def test_data_side_imports_no_view(path: Path) -> None:
    assert view_imports(path.read_text(encoding="utf-8")) == []
