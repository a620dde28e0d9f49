"""The measured speed-up an accelerated run shows: its time against the last run without
acceleration at the same settings (model, size, frames, steps, guidance on/off), shared by all
sessions of the app since they run on the same machine. A model's first run carries one-time
warm-up (allocator, kernels), so it never becomes a baseline: it would flatter the speed-up."""

from __future__ import annotations

import threading


class SpeedLog:
    """Last unaccelerated time per settings key, and the one-paragraph report of a run."""

    def __init__(self):
        self._baseline: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def report(self, key: tuple, seconds: float, accelerated: bool, stats=None, warm: bool = True) -> str:
        """Records an unaccelerated run, or compares an accelerated one with the last such run.

        stats: `samplers.AccelerationStats` of the run (None when no cache ran); warm: False for a
        model's first run.
        """
        lines = [f"Generated in **{seconds:.2f} s**."]
        with self._lock:
            baseline = self._baseline.get(key)
            if not accelerated and warm:
                self._baseline[key] = seconds
        if accelerated:
            if baseline is None:
                lines.append("No run without acceleration at these settings yet: run once with method "
                             "`none` and bottleneck off to measure the speed-up.")
            else:
                lines.append(f"**{baseline / seconds:.2f}×** the speed of the last run without acceleration "
                             f"at these settings ({baseline:.2f} s).")
            if stats is not None and stats.total:
                lines.append(f"{stats.method} {stats.summary()}.")
        elif not warm:
            lines.append("This model's first run includes one-time warm-up, so it is not kept as the baseline "
                         "for a speed-up: run again.")
        else:
            lines.append("Now try an acceleration method to compare against this time.")
        return " ".join(lines)
