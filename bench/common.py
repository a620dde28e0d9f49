"""What the benchmarks share: wall-clock timing, peak memory, oracle scoring (the strict reader's
accuracy and fidelity columns) and table printing.

Run as modules from the repository root (`python -m bench.x`); each imports this as `bench.common`.
"""

from __future__ import annotations

import resource
import statistics
import time
from contextlib import contextmanager
from dataclasses import fields
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

import samplers

# ---------------------------------------------------------------- time and memory


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with `count` torch threads (None: as is), then put the old count back, so a bench called
    in-process (the tests do) does not leave the caller on one thread with different float sums."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls of fn."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: since the last `reset_peak_rss` where Linux
    allows resetting it (VmHWM), else since the process started (ru_maxrss)."""
    hwm = _vm_hwm_mb()
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Starts a new peak-RSS window (Linux ≥ 4.0: `echo 5 > /proc/self/clear_refs`), so one call's
    peak can be read on its own; False where that is not possible (the peak then spans the process)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_of(fn: Callable[[], object]) -> float:
    """Peak RSS (MB) while fn runs — the whole process's, model weights included."""
    reset_peak_rss()
    fn()
    return peak_rss_mb()


# ---------------------------------------------------------------- sample conversion and oracle scores


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] (any shape, channels last) → uint8, as the oracle reads samples."""
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def score_row(scores: dict, attributes: Sequence[str]) -> list[str]:
    """An oracle result ({attribute: accuracy or None, 'joint', 'n'}) → table cells."""
    return [("—" if scores.get(a) is None else f"{scores[a]:.2f}") for a in (*attributes, "joint")]


# The strict reader's fidelity figures, as table columns: (result key, header, format).
# Images: `world.score`; clips: `world.score_video` (frames: every frame of every clip).
IMAGE_FIDELITY = (("template_iou", "template IoU", ".2f"), ("noise", "noise", ".1f"),
                  ("clean", "clean", ".2f"), ("strays", "strays", ".2f"))
CLIP_FIDELITY = (("shape_frames", "shape frames", ".2f"), ("template_iou", "template IoU", ".2f"),
                 ("noise", "noise", ".1f"), ("clean_frames", "clean frames", ".2f"), ("strays", "strays", ".2f"))
# What the acceleration tables show beside PSNR: the strict joint, the share clean, template IoU.
IMAGE_QUALITY = (("joint", "joint", ".2f"), ("clean", "clean", ".2f"), ("template_iou", "template IoU", ".2f"))
CLIP_QUALITY = (("joint", "joint", ".2f"), ("shape_frames", "shape frames", ".2f"),
                ("clean_frames", "clean frames", ".2f"), ("template_iou", "template IoU", ".2f"))


def fidelity_columns(video: bool) -> tuple[tuple[str, str, str], ...]:
    """The fidelity columns of a t2i (False) or t2v (True) oracle table."""
    return CLIP_FIDELITY if video else IMAGE_FIDELITY


def quality_columns(video: bool) -> tuple[tuple[str, str, str], ...]:
    """The columns an acceleration table shows beside PSNR: strict joint, clean, template IoU."""
    return CLIP_QUALITY if video else IMAGE_QUALITY


def cells(scores: dict, columns: Sequence[tuple[str, str, str]]) -> list[str]:
    """An oracle result → one cell per (key, header, format) column; '—' where a key is missing or None
    (no prompt states it, or a result from before the strict reader)."""
    return [("—" if scores.get(key) is None else format(scores[key], fmt)) for key, _, fmt in columns]


def headers(columns: Sequence[tuple[str, str, str]]) -> list[str]:
    return [header for _, header, _ in columns]


# ---------------------------------------------------------------- tables


def acceleration_name(config) -> str:
    """A cache or bottleneck config as benchmark tables name it: 'fbcache threshold=0.1',
    'interval 2' (a knob named like its method shows its value only), 'bottleneck'; options
    off their defaults follow ('fbcache threshold=0.07 forecast_head=False residual_order=1')."""
    if isinstance(config, samplers.BottleneckConfig):
        return "bottleneck"
    method = samplers.method_name(config)
    knobs = {k: getattr(config, k) for k in samplers.method_knobs(method) if hasattr(config, k)}
    default = type(config)()
    others = [f"{f.name}={getattr(config, f.name)}" for f in fields(config)  # what sets it apart from its default
              if f.name not in knobs and getattr(config, f.name) != getattr(default, f.name)]
    return " ".join([method, *(f"{v:g}" if k == method else f"{k}={v:g}" for k, v in knobs.items()), *others])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-style table; cells are printed with str()."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
