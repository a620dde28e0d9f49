"""`OUT/log.jsonl`: one JSON object per line — training rows, evaluation rows, resume marks.

Every row has `kind` ("train" | "eval" | "resume") and `step`. On resume the rows a killed run
wrote after its last checkpoint are dropped (those steps are trained again), so the steps in the
log always read as one uninterrupted run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class RunLog:
    """Append-only JSONL log with a truncate-on-resume."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
        return rows

    def truncate_after(self, step: int) -> None:
        """Keep only rows with step <= `step` (rewritten atomically)."""
        if not self.path.is_file():
            return
        kept = [r for r in self.rows() if r.get("step", 0) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
