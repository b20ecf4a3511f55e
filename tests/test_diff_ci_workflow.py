"""The CI recipe in docs/: valid YAML whose perfreport commands are the real CLI."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO

from reporter.budgets import parse_budget
from reporter.cli import SUBCOMMANDS, parse_formats, subcommand_parser

WORKFLOW = REPO / "docs" / "perfreport-workflow.yml"
CI_DOC = REPO / "docs" / "ci.md"


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict[str, Any]]:
    jobs = workflow()["jobs"]
    return [step for job in jobs.values() for step in job["steps"]]


def perfreport_commands() -> list[list[str]]:
    """Every `perfreport ...` command line in the workflow's run scripts, as argv."""
    commands = []
    for step in steps():
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "perfreport":
                commands.append(words[1:])
    return commands


def test_workflow_is_valid_yaml_for_pull_requests() -> None:
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert "pull_request" in triggers
    assert data["permissions"]["pull-requests"] == "write"
    assert all("uses" in s or "run" in s for s in steps())


def test_every_perfreport_command_parses_with_the_real_parsers() -> None:
    commands = perfreport_commands()
    runs = [c for c in commands if c[0] not in SUBCOMMANDS]
    diffs = [c[1:] for c in commands if c[0] == "diff"]
    assert len(runs) == 2 and len(diffs) == 1
    for argv in runs:
        args = subcommand_parser("run").parse_args(argv)
        formats = parse_formats(args.format, args.pdf)
        assert "json" in formats and "md" in formats
        for text in args.budget:
            parse_budget(text)
    head = subcommand_parser("run").parse_args(runs[1])
    assert set(parse_formats(head.format, head.pdf)) == {"html", "json", "md", "pdf"}
    assert head.baseline == "base-report/report.json" and head.budget
    args = subcommand_parser("diff").parse_args(diffs[0])
    assert (args.base, args.head) == ("base-report/report.json", "head-report/report.json")


def test_workflow_installs_perfreport_and_graphviz_from_outside_the_repository() -> None:
    install = next(s for s in steps() if s.get("name", "").startswith("Install"))["run"]
    assert "graphviz" in install and "libpango-1.0-0" in install
    assert "pip install perfreport-torch" in install
    assert 'pip install "."' not in install and 'pip install ".[' not in install


def test_workflow_comments_uploads_and_fails_on_a_crossed_budget() -> None:
    scripts = "\n".join(s.get("run", "") for s in steps())
    assert "gh pr comment" in scripts and "head-report/report.md" in scripts
    upload = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact"))
    paths = upload["with"]["path"]
    assert "head-report/report.html" in paths and "head-report/report.pdf" in paths
    fail = steps()[-1]
    assert fail["if"] == "steps.head.outputs.exit_code == '1'" and "exit 1" in fail["run"]


def test_ci_doc_shows_the_same_workflow() -> None:
    doc = CI_DOC.read_text()
    assert WORKFLOW.read_text().rstrip() in doc
    assert Path(CI_DOC.parent / "perfreport-workflow.yml").is_file()
