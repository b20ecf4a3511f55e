"""Generate docs/rules.md from the rule registry: `python -m reporter.rules.docs`."""

from __future__ import annotations

import sys
from pathlib import Path

from reporter.rules import RULES, default_thresholds

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def rules_markdown() -> str:
    lines = [
        "# Rules",
        "",
        "Generated from the rule registry by `python -m reporter.rules.docs`; do not edit.",
        "",
        "Each rule reads report sections (never the model) and returns findings with "
        "evidence, a recommendation and a severity. Override a threshold in `pyproject.toml`:",
        "",
        "```toml",
        "[tool.perfreport.thresholds]",
        '"structure.dominant_layer_share" = 0.6',
        "```",
        "",
        "## Thresholds",
        "",
        "| threshold | default |",
        "| --- | ---: |",
    ]
    lines += [f"| `{name}` | {value:g} |" for name, value in sorted(default_thresholds().items())]
    lines += ["", "## Rules", ""]
    for r in sorted(RULES.values(), key=lambda r: r.id):
        lines += [f"### {r.id}", "", f"**{r.title}.** {r.doc}".rstrip(), ""]
        lines += [f"Reads: {', '.join(f'`{s}`' for s in r.reads)}."]
        if r.thresholds:
            shown = ", ".join(f"`{k}` = {v:g}" for k, v in r.thresholds.items())
            lines += ["", f"Thresholds: {shown}."]
        lines += [""]
    return "\n".join(lines)


def main() -> int:
    DOCS_PATH.parent.mkdir(exist_ok=True)
    DOCS_PATH.write_text(rules_markdown(), encoding="utf-8")
    print(f"wrote {DOCS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
