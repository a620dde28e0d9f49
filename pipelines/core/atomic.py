"""Atomic writes: a reader (or a resumed run) sees an output whole or not at all, and a write only
ever replaces the output it is writing — never anything else at or beside that path.

Files: written to a temp file beside the target (`.NAME.<random>.tmp.SUFFIX`), then renamed over it.
Folders: written to a temp folder beside the target (`.NAME.tmp-PID`), then swapped in with two
renames (`final → .NAME.old`, `tmp → final`) because a folder cannot be renamed over a non-empty
one; a kill between the two leaves only `.NAME.old`, which `recover` puts back.

Whether an existing output may be replaced at all is the caller's decision (the CLIs refuse
unless `--overwrite`; a training checkpoint replaces its own previous one); these functions
refuse to put a folder where a file is, or a file where a folder is.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

_UMASK = os.umask(0)
os.umask(_UMASK)

# what a killed atomic write leaves beside NAME: .NAME.<random>.tmp[.suffix], .NAME.tmp-PID, .NAME.old
_PARTIAL = re.compile(r"\.(?P<name>.+?)\.(?:[a-z0-9_]+\.tmp(?:\.[^.]*)?|tmp-\d+|old)")


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


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Calls write(tmp_path) on a temp file beside `path`, then renames it into place."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; refusing to replace it by a file")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        _fsync(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_dir_for(final: Path) -> Path:
    """A fresh, empty sibling of `final` to write into (unique per process)."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _old(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def swap_in(tmp: Path, final: Path) -> None:
    """Make the completely written `tmp` folder become `final`, replacing a previous `final` folder."""
    tmp, final = Path(tmp), Path(final)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(f"{final} is a file; refusing to replace it by a folder")
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


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Calls write(tmp_dir) on a temp folder beside `path`, then swaps it in (`swap_in`)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; refusing to replace it by a folder")
    tmp = temp_dir_for(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~_UMASK)
        swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover(final: Path, complete_marker: str | None = None) -> None:
    """Undo an interrupted folder swap (restore `.NAME.old`) and remove stale temp folders.

    With `complete_marker`, a `final` lacking that file counts as missing.
    """
    final = Path(final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    old = _old(final)
    complete = final.is_dir() and (complete_marker is None or (final / complete_marker).is_file())
    if not complete and old.is_dir():
        shutil.rmtree(final, ignore_errors=True)
        os.replace(old, final)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)


def remove_partial_writes(folder: str | Path, names) -> None:
    """Cleans up what hard-killed atomic writes of `names` left in `folder` (one scan of the folder):
    temp files and folders are deleted, an interrupted folder swap is undone (`recover`).

    Only the given names are touched, so processes sharing a folder each clean their own."""
    names = set(names)
    folder = Path(folder)
    for entry in list(folder.iterdir()):
        match = _PARTIAL.fullmatch(entry.name)
        if not match or match["name"] not in names:
            continue
        if entry.name.endswith(".old"):
            recover(folder / match["name"])
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
