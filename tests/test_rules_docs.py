from __future__ import annotations

from reporter.rules import RULES
from reporter.rules.docs import DOCS_PATH, rules_markdown


def test_docs_rules_md_is_current() -> None:
    assert DOCS_PATH.read_text(encoding="utf-8") == rules_markdown(), (
        "docs/rules.md is stale: run `python -m reporter.rules.docs`"
    )


def test_every_rule_is_documented() -> None:
    text = DOCS_PATH.read_text(encoding="utf-8")
    for rule_id, r in RULES.items():
        assert f"### {rule_id}" in text
        assert r.doc, f"rule {rule_id} has no doc text"
