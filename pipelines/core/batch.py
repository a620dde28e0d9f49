"""Batch jobs over prompt files: reading prompts, naming outputs, claims, a resumable manifest.

A batch writes each output atomically (`pipelines.core.atomic`), then appends one line to
`manifest.jsonl`. A re-run reads the manifest and skips finished jobs, so a killed job loses at
most the item in flight and never leaves a half-written file behind. Processes sharing one output
folder (started by hand, or by a launcher) each claim a job before making it (`Claims`), so no
output is ever made twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import UserError

MANIFEST = "manifest.jsonl"
FAILED = "failed.jsonl"


@dataclass(frozen=True)
class Job:
    """One line of a prompt file: its index (0-based line among prompts), prompt and seed."""

    index: int
    prompt: str
    seed: int
    extra: tuple = ()  # (key, value) pairs a pipeline may use, e.g. ("num_frames", 16)

    @property
    def key(self) -> str:
        return f"{self.index}\t{self.prompt}\t{self.seed}"


def read_prompt_file(path: str | Path, base_seed: int, extra_keys: tuple[str, ...] = ()) -> list[Job]:
    """Prompts from a text file (one per line; blank lines and #-comments skipped) or `.jsonl`
    (objects with `prompt`, optional `seed` and `extra_keys`). Seeds default to base_seed + index."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompts file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"prompts file {path} is not UTF-8 text (byte {err.start})") from None
    jobs: list[Job] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or (path.suffix != ".jsonl" and line.startswith("#")):
            continue
        index = len(jobs)
        if path.suffix == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
                raise UserError(f"{path}:{lineno}: needs a non-empty string 'prompt'")
            seed = row.get("seed", base_seed + index)
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise UserError(f"{path}:{lineno}: seed must be a non-negative integer, got {seed!r}")
            extra = tuple((k, row[k]) for k in extra_keys if k in row)
            jobs.append(Job(index, row["prompt"].strip(), seed, extra))
        else:
            jobs.append(Job(index, line, base_seed + index))
    if not jobs:
        raise UserError(f"prompts file {path} has no prompts")
    return jobs


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe form of a prompt: lowercase letters, digits and dashes only."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:limit].rstrip("-") or "prompt"


def output_name(job: Job, suffix: str) -> str:
    """`00012-a-red-circle-s42.png`: index first so names sort in prompt order and never collide."""
    return f"{job.index:05d}-{slug(job.prompt)}-s{job.seed}{suffix}"


def ensure_writable_dir(folder: str | Path) -> Path:
    """Creates `folder` if needed and proves a file can be written there, or raises UserError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ditkit-probe-"):
            pass
    except OSError as err:
        raise UserError(f"cannot write to output folder {folder}: {err.strerror or err}") from None
    return folder


RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process as its launcher tells it (torchrun and `accelerate launch`
    set RANK/WORLD_SIZE, MPI its own names); (0, 1) when started alone."""

    def first(names: tuple[str, ...], default: int) -> int:
        for name in names:
            if os.environ.get(name, "").strip():
                try:
                    return int(os.environ[name])
                except ValueError:
                    raise UserError(f"{name} must be an integer, got {os.environ[name]!r}") from None
        return default

    rank, world = first(RANK_VARS, 0), first(WORLD_VARS, 1)
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"process rank {rank} does not fit world size {world}")
    return rank, world


def shard(jobs: list[Job], rank: int, world: int) -> list[Job]:
    """This process's share of a batch: job i goes to rank i % world, so shares never overlap."""
    return [job for job in jobs if job.index % world == rank]


class Manifest:
    """Append-only JSONL record of finished jobs in a batch folder.

    Every process of a multi-process run appends to its own part (`manifest.part-R.jsonl`) so
    writers never interleave; `done_keys` reads all parts. A row is written only after its
    output file is in place.
    """

    def __init__(self, folder: Path, part: int | None = None):
        self.folder = folder
        self.path = folder / (MANIFEST if part is None else f"manifest.part-{part}.jsonl")
        self.failed_path = folder / (FAILED if part is None else f"failed.part-{part}.jsonl")

    def rows(self) -> list[dict]:
        rows = []
        for file in sorted(self.folder.glob("manifest*.jsonl")):
            for line in file.read_text(encoding="utf-8").splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line from a hard kill: that job simply runs again
        return rows

    def done_keys(self, **match) -> set[str]:
        """Keys of finished jobs whose output still exists (and whose row has every `match` field)."""
        return {r["key"] for r in self.rows() if "key" in r and (self.folder / r.get("path", "")).exists()
                and all(r.get(k) == v for k, v in match.items())}

    def _append(self, file: Path, row: dict) -> None:
        with open(file, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def record(self, job: Job, rel_path: str, **fields) -> None:
        self._append(self.path, {"prompt": job.prompt, "seed": job.seed, "path": rel_path, "key": job.key,
                                 "index": job.index, **dict(job.extra), **fields})

    def record_failure(self, job: Job, error: str) -> None:
        self._append(self.failed_path, {"prompt": job.prompt, "seed": job.seed, "index": job.index,
                                        "key": job.key, "error": error})


class Claims:
    """Exclusive claims on the jobs of one batch folder, shared by every process on this machine.

    A claim is an advisory lock (`flock`) on a lock file named after the job, in a folder of the
    temp dir named after the batch folder's real path (so the user's folder holds only outputs):
    the kernel drops it when its process ends, however it ends, so a killed run never leaves a job
    claimed. The lock files stay: a claim is always on the same file, so two processes can never
    both hold one. After taking a claim, a process must check again that the job is not done
    (another process may have finished it just before). Processes on other machines split a batch
    by rank instead (`shard`).
    """

    def __init__(self, folder: Path):
        key = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:16]
        self.folder = Path(tempfile.gettempdir()) / f"ditkit-claims-{os.getuid()}" / key
        self.folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def claim(self, name: str) -> Iterator[bool]:
        """with claims.claim(name) as mine: … — `mine` is False when another process holds it."""
        fd = os.open(self.folder / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
