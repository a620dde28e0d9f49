"""pipelines.core.allocator: freed activations stay in the process (glibc), so a denoising loop does
not page-fault its way through fresh mmaps every forward."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import os, sys
sys.path.insert(0, {root!r})
from pipelines.core.allocator import keep_freed_memory
applied = keep_freed_memory() if {keep} else None
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
block = bytearray(24 * 2**20)  # zero-filled: every page touched
held = rss_mb()
del block
print(applied, held - rss_mb())
"""


def freed_mb(keep: bool) -> tuple[str, float]:
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=root, keep=keep)], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], float(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_stay_in_the_process():
    applied, returned = freed_mb(keep=True)
    assert applied == "True"
    assert returned < 4, f"{returned:.0f} MB went back to the OS after keep_freed_memory()"
    # without it glibc unmaps the block at once: the probe can tell the two apart
    assert freed_mb(keep=False)[1] > 20
