"""Backward FLOPs per module: each autograd node's work goes to the modules whose
forward created the node.

FlopCounterMode's own module tracking marks a module as entered during backward when a
gradient reaches its output and never reliably as left, so its per-module backward
figures leak: a Dropout(p=0) gets the whole model's backward. Here the module is known
from the node itself instead:

- During the forward, module pre- and post-hooks note autograd's sequence number (the
  number the next autograd node will get; it grows by one per node, per thread) and the
  stack of modules then running. A node's sequence number therefore says which modules
  were running when it was created.
- Before backward, every node reachable from the loss gets a pre-hook and a post-hook.
  Between the two, the counter's global counts grow by that node's work (less that of
  any node run inside it, as reentrant checkpointing does), which is added to each of
  those modules: inclusive figures, as FlopCounterMode's forward ones, so a parent holds
  its children's work.
- What no tagged node ran (the loss's own backward, nodes created outside any module)
  goes to the root, so the root's figure is the backward total.
- Activation checkpointing recomputes forward work during backward: it is counted in the
  node that needed it (non-reentrant checkpointing: a node of the checkpointed module;
  reentrant: the checkpoint's own node, created in the module that called checkpoint).
"""

from __future__ import annotations

import bisect
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

Counts = dict[str, dict[str, int]]  # module key -> op name -> FLOPs


def _sequence_nr() -> int:
    return torch.autograd._get_sequence_nr()


class BackwardAttribution:
    """Per-module backward FLOPs of one forward+backward, keyed as FlopCounterMode keys
    modules: the root's class name, then 'Root.child.sub'."""

    def __init__(self, model: torch.nn.Module, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.root = type(model).__name__
        self.names = {
            m: (f"{self.root}.{name}" if name else self.root) for name, m in model.named_modules()
        }
        self.stack: list[str] = []
        # (sequence number, modules running from then on), in the order they happened
        self.starts: list[int] = []
        self.states: list[tuple[str, ...]] = []
        self.running: list[tuple[Counter[str], Counter[str]]] = []  # per node being run
        self.attributed: Counter[str] = Counter()  # by op, over all tagged nodes
        self.by_module: dict[str, Counter[str]] = {}

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Note, during the forward, which modules run while each node is created."""
        handles = []
        for module in self.names:
            handles.append(module.register_forward_pre_hook(self._enter))
            handles.append(module.register_forward_hook(self._leave, always_call=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _note(self) -> None:
        self.starts.append(_sequence_nr())
        self.states.append(tuple(self.stack))

    def _enter(self, module: torch.nn.Module, args: Any) -> None:
        self.stack.append(self.names[module])
        self._note()

    def _leave(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        name = self.names[module]
        if name in self.stack:  # the last call of this name, in case an inner one raised
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(name) :]
        self._note()

    def modules_of(self, node: Any) -> tuple[str, ...]:
        """The modules that were running when the node was created; () outside them."""
        index = bisect.bisect_right(self.starts, node._sequence_nr()) - 1
        return self.states[index] if index >= 0 else ()

    def watch(self, *outputs: torch.Tensor) -> None:
        """Hook every node reachable from the outputs that a module's forward created."""
        roots = [t.grad_fn for t in outputs if t.grad_fn is not None]
        seen: set[int] = set()
        keep: list[Any] = []  # the nodes seen, alive so that no id is reused meanwhile
        while roots:
            node = roots.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            keep.append(node)
            modules = self.modules_of(node)
            if modules:
                node.register_prehook(self._started)
                node.register_hook(self._finisher(modules))
            roots.extend(n for n, _ in node.next_functions if n is not None)

    def _global(self) -> Counter[str]:
        return Counter({str(op): n for op, n in self.counter.flop_counts["Global"].items()})

    def _started(self, grad_outputs: Any) -> None:
        self.running.append((self._global(), Counter(self.attributed)))

    def _finisher(self, modules: tuple[str, ...]) -> Any:
        def finished(grad_inputs: Any, grad_outputs: Any) -> None:
            total_before, attributed_before = self.running.pop()
            own = self._global() - total_before - (self.attributed - attributed_before)
            self.attributed += own
            for name in set(modules):
                self.by_module.setdefault(name, Counter()).update(own)

        return finished

    def counts(self, backward: dict[str, int]) -> Counts:
        """Per-module counts of the backward whose global counts by op are `backward`;
        what no tagged node ran is the root's."""
        out: Counts = {"Global": dict(backward)}
        for name, ops in self.by_module.items():
            out[name] = {op: n for op, n in ops.items() if n}
        rest = Counter(backward) - self.attributed
        root = out.setdefault(self.root, {})
        for op, n in rest.items():
            root[op] = root.get(op, 0) + n
        return {name: ops for name, ops in out.items() if ops or name == "Global"}
