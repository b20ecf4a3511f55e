"""torchrun on perfreport's lifeline: ``python -P -m reporter.distributed.guarded_run CMD...``.

It starts the guardian (``lifetime.guard_from_env``: SIGKILL when perfreport dies, and a
process that kills this process group when perfreport's lifeline closes or the deadline
passes), then becomes CMD, torchrun, by exec: same process, same group. torchrun starts
each rank in a session of its own, out of the group's reach, so each rank asks the kernel
for SIGKILL when torchrun ends (``rank_main``). perfreport killed by ``kill -9`` thus takes
the guardian's kill to torchrun and, through it, to every rank.
"""

from __future__ import annotations

import os
import sys

from reporter import lifetime


def main(cmd: list[str]) -> None:
    lifetime.guard_from_env()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
