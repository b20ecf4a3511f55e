"""The output folder changes as a whole or not at all.

A run writes everything (trace, graph files, reports) into a staging folder of its own
beside `-o`. Only when every file is written are perfreport's names in `-o` swapped for the
new ones, by renames under a lock on `-o`, with SIGINT and SIGTERM held back; names this
run did not produce (an old `graph.png`, an old `trace/`) go too, so nothing stale sits
beside the new report. Until the swap nothing in `-o` changes: an interrupt, a crash or a
full disk leaves the earlier report whole. Two runs into one `-o` each get their own staging
folder, so neither reads the other's trace; the later swap wins whole.

A staging folder is flocked while its run lives; a later run removes those whose lock it
can take (their run died, e.g. by kill -9).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from reporter.errors import UsageError
from reporter.options import RunOptions

REPORT_FILES = tuple(f"report.{ext}" for ext in ("json", "html", "md", "pdf"))
# Every name a run of perfreport owns in its output folder.
RUN_OUTPUTS = (*REPORT_FILES, *(f"graph.{ext}" for ext in ("svg", "dot", "png", "pdf")), "trace")
STAGING_TAG = ".perfreport-staging-"
# Errors of the disk, not of perfreport: one line, exit 2, nothing in -o changed.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


class Staging:
    """A private folder beside `out` that becomes `out`'s contents at `commit`."""

    def __init__(self, out: Path, owned: Sequence[str] = RUN_OUTPUTS) -> None:
        self.out = out
        self.owned = tuple(owned)
        self.path = _make_staging(out)
        self._lock = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # marks this staging folder as alive

    def options(self, options: RunOptions) -> RunOptions:
        """`options` writing into the staging folder instead of `out`."""
        return dataclasses.replace(options, out_dir=str(self.path))

    def relocated(self, report: Any) -> Any:
        """The Report with every path into the staging folder (trace files, options) as
        it will be once committed."""
        from reporter.report import Report, from_data, to_data

        return from_data(Report, _moved(to_data(report), str(self.path), str(self.out)))

    def commit(self, written: Sequence[Path] = ()) -> list[Path]:
        """Swap the staged names into `out`; return `written` as paths in `out`."""
        with _signals_held(), _locked(self.out):
            _swap(self.path, self.out, self.owned)
        return [self.out / Path(p).relative_to(self.path) for p in written]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock)
        _remove_tree(self.path)


def _moved(data: Any, old: str, new: str) -> Any:
    if isinstance(data, str):
        return new + data[len(old) :] if data == old or data.startswith(old + os.sep) else data
    if isinstance(data, list):
        return [_moved(v, old, new) for v in data]
    if isinstance(data, dict):
        return {k: _moved(v, old, new) for k, v in data.items()}
    return data


@contextlib.contextmanager
def staged(out: Path, owned: Sequence[str] = RUN_OUTPUTS) -> Iterator[Staging]:
    """A Staging for `out`, removed on the way out; a full disk becomes one usage line."""
    remove_dead_stagings(out)
    try:
        staging = Staging(out, owned)
    except OSError as exc:
        raise UsageError(f"cannot create a staging folder beside {out}: {exc.strerror}") from None
    try:
        yield staging
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        raise UsageError(
            f"could not write the report ({exc.strerror}): nothing in {out} was changed"
        ) from None
    finally:
        staging.close()


def staging_parent(out: Path) -> Path:
    """Beside `out` when its parent is writable and on the same filesystem (renames must
    not cross one), else inside `out`."""
    parent = out.parent
    try:
        same_fs = parent.stat().st_dev == out.stat().st_dev
    except OSError:
        same_fs = False
    return parent if same_fs and os.access(parent, os.W_OK | os.X_OK) else out


def _make_staging(out: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_TAG}", dir=staging_parent(out)))


def remove_dead_stagings(out: Path) -> None:
    """Remove staging folders of `out` left by runs that died (their flock is free)."""
    for folder in staging_parent(out).glob(f".{out.name}{STAGING_TAG}*"):
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live run holds it
        finally:
            os.close(fd)
        _remove_tree(folder)


def _swap(staging: Path, out: Path, owned: Sequence[str]) -> None:
    """Move `out`'s owned names into a trash folder, the staged ones into `out`.

    Only renames on one filesystem: no space is needed and each step is atomic. If one
    fails, the moves done so far are undone, so `out` is left as it was."""
    trash = Path(tempfile.mkdtemp(prefix=".old-", dir=staging))
    done: list[tuple[Path, Path]] = []
    try:
        for name in owned:
            old = out / name
            if old.exists() or old.is_symlink():
                os.replace(old, trash / name)  # a symlink moves as a link: never followed
                done.append((trash / name, old))
        for name in owned:
            new = staging / name
            if new.exists() and not new.is_symlink():
                os.replace(new, out / name)
                done.append((out / name, new))
    except OSError:
        for moved, origin in reversed(done):
            with contextlib.suppress(OSError):
                os.replace(moved, origin)
        raise


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself: two swaps into one folder never mix."""
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the renames are done (delivered right after)."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _remove_tree(path: Path) -> None:
    """Remove a folder perfreport made; links inside are removed, never followed."""
    if path.is_symlink():
        path.unlink()
        return
    shutil.rmtree(path, ignore_errors=True)
