"""Memory figures respect a cgroup's limit (a container, a CI job), not only the host's;
a batch sweep killed at a large batch keeps what it measured."""

from __future__ import annotations

import json
from pathlib import Path

from reporter import memlimit
from reporter.memlimit import CgroupMemory, available_bytes, cgroup_memory, total_bytes

GIB = 2**30


def _tree(root: Path, cgroup_lines: str, files: dict[str, str]) -> Path:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup_lines)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_v2_limit_and_usage(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "0::/ci/job\n",
        {
            "sys/fs/cgroup/ci/job/memory.max": f"{2 * GIB}\n",
            "sys/fs/cgroup/ci/job/memory.current": f"{GIB // 2}\n",
        },
    )
    assert cgroup_memory(root) == CgroupMemory(2 * GIB, GIB // 2)
    assert available_bytes(64 * GIB, root) == GIB + GIB // 2  # the cgroup leaves less
    assert available_bytes(GIB, root) == GIB  # the host has less
    assert total_bytes(root) == min(2 * GIB, total_bytes(tmp_path / "none"))


def test_v2_tightest_ancestor_counts_and_max_is_no_limit(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "0::/ci/job\n",
        {
            "sys/fs/cgroup/ci/memory.max": f"{GIB}\n",
            "sys/fs/cgroup/ci/memory.current": f"{GIB // 4}\n",
            "sys/fs/cgroup/ci/job/memory.max": "max\n",
            "sys/fs/cgroup/ci/job/memory.current": f"{GIB // 8}\n",
        },
    )
    assert cgroup_memory(root) == CgroupMemory(GIB, GIB // 4)


def test_v1_limit_and_unlimited(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "a",
        "4:memory:/docker/abc\n0::/\n",
        {
            "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": f"{3 * GIB}\n",
            "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": f"{GIB}\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "5\n",
        },
    )
    assert cgroup_memory(root) == CgroupMemory(3 * GIB, GIB)
    unlimited = _tree(
        tmp_path / "b",
        "4:memory:/\n",
        {
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "5\n",
        },
    )
    assert cgroup_memory(unlimited) is None
    assert available_bytes(7, unlimited) == 7


def test_inside_a_container_the_path_is_not_mounted(tmp_path: Path) -> None:
    """The cgroup namespace shows the container's own cgroup at the mount point."""
    root = _tree(
        tmp_path,
        "0::/kubepods/pod1/c1\n",
        {"sys/fs/cgroup/memory.max": f"{GIB}\n", "sys/fs/cgroup/memory.current": "0\n"},
    )
    assert cgroup_memory(root) == CgroupMemory(GIB, 0)


def test_auto_meta_reads_the_cgroup_limit(tmp_path: Path, monkeypatch, model_file) -> None:
    """8 MiB of weights, a host with plenty free, a cgroup with 4 MiB left: meta."""
    from helpers import subject_for

    path = model_file(
        """
        import torch
        from torch import nn

        def build_model():
            return nn.Linear(1024, 2048)

        def example_inputs():
            return torch.randn(1, 1024)
        """
    )
    monkeypatch.setattr(
        memlimit, "cgroup_memory", lambda root=None: CgroupMemory(8 * 2**20, 4 * 2**20)
    )
    assert subject_for(path, tmp_path).device.type == "meta"
    monkeypatch.setattr(memlimit, "cgroup_memory", lambda root=None: None)
    assert subject_for(path, tmp_path).device.type == "cpu"


def test_sweep_memory_limit_reads_the_cgroup(monkeypatch) -> None:
    import torch

    from reporter.profiling.sweep import CPU_MEMORY_SHARE, default_memory_limit

    monkeypatch.setattr(memlimit, "cgroup_memory", lambda root=None: CgroupMemory(GIB, 0))
    assert default_memory_limit(torch.device("cpu")) == int(CPU_MEMORY_SHARE * GIB)


KILLED_AT_BATCH_8 = """
import os, signal
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if x.shape[0] >= 8:  # what the OOM killer does to a batch that does not fit
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fc(x)

def example_inputs():
    return torch.randn(2, 4)
"""


def test_sweep_killed_at_a_large_batch_keeps_its_points(cli, tmp_path, model_file) -> None:
    out = tmp_path / "out"
    result = cli(
        model_file(KILLED_AT_BATCH_8),
        *("-o", out, "--only", "timing", "--batch-sweep", "--timing-seconds", "0.2"),
    )
    assert result.code == 3, result.err  # report written, a stage was killed
    data = json.loads((out / "report.json").read_text())
    assert data["stages"]["timing"]["status"] == "failed"
    assert "SIGKILL" in data["stages"]["timing"]["error"]
    timing = data["timing"]
    assert timing["latency_ms"]["median"] > 0
    assert [p["batch"] for p in timing["sweep"]["points"]] == [1, 2, 4]
    assert "batch 8" in timing["sweep"]["stop_reason"]
    assert "✗ timing failed" in result.err
