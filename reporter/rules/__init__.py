"""Rules that turn report figures into findings. Importing this package registers them all.

The import order below is the registry's order, which is the order of findings of equal
severity in the report.
"""

# isort: off
from reporter.rules import distributed as _distributed  # noqa: F401  (registers rules)

# isort: on
from reporter.rules import compute, deploy, gpu, health, structure  # noqa: F401  (registers rules)
from reporter.rules import deployment as _deployment  # noqa: F401  (registers rules)
from reporter.rules import memory_timeline as _memory_timeline  # noqa: F401  (registers rules)
from reporter.rules import roofline as _roofline  # noqa: F401  (registers rules)
from reporter.rules import timing as _timing  # noqa: F401  (registers rules)
from reporter.rules import trace_events as _trace_events  # noqa: F401  (registers rules)
from reporter.rules.registry import RULES, default_thresholds, run_rules

__all__ = ["RULES", "default_thresholds", "run_rules"]
