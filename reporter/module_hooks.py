"""Global forward hooks, for the instruments that follow a model's modules as they run.

Global rather than attached to the model's modules: a hook attached to a module turns off
nn.TransformerEncoderLayer's fused fast path, so the instrument would watch a path the
timing stage, and production, do not take. Each caller keeps the hooks to its own model's
modules (by identity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch.nn.modules.module as module_globals
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook


@contextmanager
def forward_hooks(
    pre: Callable[..., Any],
    post: Callable[..., Any],
    *,
    always_call: bool = False,
    with_kwargs: bool = False,
) -> Iterator[None]:
    """``pre`` before and ``post`` after every module's forward inside the block;
    ``always_call``: ``post`` also when the forward raises."""
    handles = [
        register_module_forward_pre_hook(pre),
        register_module_forward_hook(post, always_call=always_call, with_kwargs=with_kwargs),
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        # torch's handle does not clear the with_kwargs flag of a global hook, and a stale
        # flag makes every later torch.compile warn about global hooks: clear it here.
        module_globals._global_forward_hooks_with_kwargs.pop(handles[1].id, None)
