"""Share the machine's cores among the ditkit jobs running on it, instead of letting them fight.

Each torch process starts with one thread per core; two of them on the same cores oversubscribe
them and both run many times slower (docs/BENCHMARKS.md, "Several jobs on one machine"). A job
registers itself here (an `flock`ed file in a per-user folder under the temp dir, released by the
kernel whenever the process ends) and, before each item, sets torch's thread count to its share:
the usable cores divided by the number of registered jobs.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import torch


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class CoreShare:
    """Registered while open: `share()` sets and returns this job's thread count."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder or Path(tempfile.gettempdir()) / f"ditkit-jobs-{os.getuid()}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{os.getpid()}.lock"
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.threads_before = torch.get_num_threads()

    def jobs(self) -> int:
        """Registered live jobs, this one included; files of ended jobs are removed on the way."""
        count = 0
        for entry in self.folder.glob("*.lock"):
            if entry == self.path:
                count += 1
                continue
            try:
                fd = os.open(entry, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                count += 1  # held: a live job
            else:
                entry.unlink(missing_ok=True)  # its process ended without cleaning up
            finally:
                os.close(fd)
        return max(count, 1)

    def share(self) -> int:
        """Sets torch's intra-op threads to this job's share of the cores, at most what it started with."""
        threads = max(1, min(self.threads_before, usable_cores() // self.jobs()))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads

    def close(self) -> None:
        """Unregisters and puts the thread count back (the CLIs also run inside tests and benches)."""
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
        torch.set_num_threads(self.threads_before)

    def __enter__(self) -> "CoreShare":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
