"""What a stage receives: the subject, the options, and the results of earlier stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporter.options import RunOptions
from reporter.subject import Subject


class SkipStage(Exception):
    """Raised by a stage that cannot run here; the message is the reason shown."""


@dataclass
class StageContext:
    subject: Subject
    options: RunOptions
    # Sections of the stages that already finished, by stage name (the dataclass objects).
    sections: dict[str, Any] = field(default_factory=dict)
    # Results shared between stages so the model runs as few times as possible.
    cache: dict[str, Any] = field(default_factory=dict)
    # Progress inside a long stage ("warm-up", "batch 64"), shown beside the stage's name.
    progress: Callable[[str], None] = field(default=lambda message: None)
    # Sends the running stage's section so far to the parent, which keeps it should the
    # model process die before the stage ends (the OOM killer at a large batch).
    on_partial: Callable[[Any], None] | None = None

    def partial(self, section: Any) -> None:
        if self.on_partial is not None:
            self.on_partial(section)

    @property
    def out_dir(self) -> Path:
        return Path(self.options.out_dir)

    def shared(self, key: str, compute: Any) -> Any:
        """Compute a value once per run (e.g. the instrumented forward pass)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]
