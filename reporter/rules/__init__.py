"""Rules that turn report figures into findings. Importing this package registers them all."""

from reporter.distributed import rules as _distributed  # noqa: F401  (registers rules)
from reporter.rules import compute, deploy, gpu, health, structure  # noqa: F401  (registers rules)
from reporter.rules import deployment as _deployment  # noqa: F401  (registers rules)
from reporter.rules import memory_timeline as _memory_timeline  # noqa: F401  (registers rules)
from reporter.rules import roofline as _roofline  # noqa: F401  (registers rules)
from reporter.rules import timing as _timing  # noqa: F401  (registers rules)
from reporter.rules.registry import RULES, default_thresholds, run_rules
from reporter.trace import rules as _trace  # noqa: F401  (registers rules)

__all__ = ["RULES", "default_thresholds", "run_rules"]
