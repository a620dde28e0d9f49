"""Replace a folder by a fully written one so that readers (and a resumed run) never see half of it.

A folder cannot be renamed over a non-empty one, so the swap is two renames:
`final → .final.old`, `tmp → final`, then `.final.old` is removed. A kill between the two renames
leaves only `.final.old`; `recover` puts it back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def temp_dir_for(final: Path) -> Path:
    """A fresh, empty sibling of `final` to write into (unique per process)."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _old(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def _fsync(path: Path) -> None:
    """Flush a file or folder entry to disk (best effort: some file systems refuse folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def swap_in(tmp: Path, final: Path) -> None:
    """Make the completely written `tmp` folder become `final`, replacing any previous one."""
    for f in tmp.rglob("*"):
        if f.is_file():
            _fsync(f)
    _fsync(tmp)
    old = _old(final)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover(final: Path, complete_marker: str | None = None) -> None:
    """Undo an interrupted `swap_in` (restore `.final.old`) and remove stale temp folders.

    With `complete_marker`, a `final` lacking that file counts as missing.
    """
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    old = _old(final)
    complete = final.is_dir() and (complete_marker is None or (final / complete_marker).is_file())
    if not complete and old.is_dir():
        shutil.rmtree(final, ignore_errors=True)
        os.replace(old, final)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)
