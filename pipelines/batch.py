"""Batch jobs over prompt files: reading prompts, naming outputs, atomic writes, a resumable manifest.

A batch writes each output to a temp file and renames it into place, then appends one line to
`manifest.jsonl`. A re-run reads the manifest and skips finished jobs, so a killed job loses at
most the item in flight and never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UserError

MANIFEST = "manifest.jsonl"
FAILED = "failed.jsonl"
_UMASK = os.umask(0)
os.umask(_UMASK)


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


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Calls write(tmp_path) on a temp file beside `path`, then renames it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Calls write(tmp_dir) on a temp folder beside `path`, then swaps it into place.

    Two renames (old folder aside, new one in) replace a finished folder; a kill between them
    leaves no folder at `path`, so a resumed batch simply makes it again.
    """
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# what atomic_write / atomic_write_dir leave beside `name` when killed: .NAME.<random>.tmp[.suffix] / .old
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]+\.(?:tmp|old)(?:\.[^.]*)?")


def remove_partial_writes(folder: str | Path, names) -> None:
    """Deletes what hard-killed atomic writes of `names` left in `folder` (one scan of the folder).

    Only the given names are touched, so processes sharing a folder each clean their own."""
    names = set(names)
    for entry in Path(folder).iterdir():
        match = _PARTIAL.fullmatch(entry.name)
        if match and match["name"] in names:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


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
