"""Run options: everything the CLI parsed, in a form the model process can receive as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reporter.option_schema import default
from reporter.report import DEFAULT_STAGES


@dataclass
class RunOptions:
    model_file: str  # absolute path
    out_dir: str  # absolute path
    model_name: str | None = None  # --model
    input_shapes: list[list[int]] = field(default_factory=list)  # --input-shape, repeatable
    dtype: str | None = None  # --dtype: of the inputs from --input-shape, and of the model
    input_file: str | None = None  # --input FILE.pt
    checkpoint: str | None = None  # --checkpoint FILE (state_dict)
    device: str = default("device")  # "cpu", "cuda", "cuda:1", "meta"
    auto_meta: bool = True  # use meta when the weights would not fit (off: --no-auto-meta)
    depth: int = default("depth")  # torchinfo table depth
    stages: list[str] = field(default_factory=lambda: list(DEFAULT_STAGES))
    train: bool = False  # profile a training step, not only inference
    seed: int = default("seed")
    debug: bool = False
    timeout: float = default("timeout")  # seconds for the whole model process
    threads: int | None = None  # --threads: torch.set_num_threads in the model process
    command_line: str = ""
    # Stage-specific settings, by stage name (e.g. {"profile": {"active": 5}}).
    stage_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stage_option(self, stage: str, key: str, default: Any = None) -> Any:
        return self.stage_options.get(stage, {}).get(key, default)
