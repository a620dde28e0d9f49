"""Where the app writes results: one private temp folder per app, removed when the process exits.

File names come from the prompt, reduced to lowercase letters, digits and dashes, so nothing a
user types can reach outside the folder or confuse a browser's download; a counter keeps two
requests with the same prompt and seed apart. Gradio serves copies from its own cache, so a
long-running app drops its files after `max_age` seconds instead of filling the disk.
"""

from __future__ import annotations

import atexit
import itertools
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.core.video_io import write_clip
from pipelines.t23d.files import write_point_cloud
from pipelines.t23d.mesh import write_mesh

MAX_STEM = 48
DAY = 24 * 3600


def slug(text: str) -> str:
    """'A red circle!/../x' → 'a-red-circle-x' (at most MAX_STEM characters; 'sample' if nothing is left)."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:MAX_STEM].rstrip("-") or "sample"


class OutputFolder:
    """Result files of this app; `root` defaults to a fresh temp folder that is removed at exit."""

    def __init__(self, root: str | Path | None = None, max_age: float = DAY):
        if root is None:
            root = tempfile.mkdtemp(prefix="ditkit-app-")
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self._pruned = time.time()

    def stem(self, prompt: str, seed: int) -> Path:
        with self._lock:
            n = next(self._count)
            due = time.time() - self._pruned > min(self.max_age, 3600)
            if due:
                self._pruned = time.time()
        if due:
            self.prune()
        return self.root / f"{n:05d}-{slug(prompt)}-seed{seed}"

    def prune(self) -> None:
        """Removes result files older than `max_age` seconds."""
        cutoff = time.time() - self.max_age
        for path in self.root.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:  # another request pruned it first
                pass

    def save_image(self, image: Image.Image, prompt: str, seed: int) -> Path:
        path = self.stem(prompt, seed).with_suffix(".png")
        image.save(path, format="PNG")
        return path

    def save_clip(self, frames: np.ndarray, fps: float, prompt: str, seed: int) -> tuple[Path, Path]:
        """frames (F, H, W, 3) in [0, 1] → (mp4, gif) paths."""
        stem = self.stem(prompt, seed)
        mp4, gif = stem.with_suffix(".mp4"), stem.with_suffix(".gif")
        write_clip(mp4, frames, fps, "mp4")
        write_clip(gif, frames, fps, "gif")
        return mp4, gif

    def save_shape(self, points: np.ndarray, colours: np.ndarray | None, mesh, prompt: str,
                   seed: int) -> tuple[Path, Path, Path]:
        """A cloud (points (N, 3), colours (N, 3) in [0, 1] or None) and its trimesh mesh → (ply, glb, obj) paths."""
        stem = self.stem(prompt, seed)
        ply, glb, obj = (stem.with_suffix(s) for s in (".ply", ".glb", ".obj"))
        write_point_cloud(ply, points, colours)
        write_mesh(glb, mesh)
        write_mesh(obj, mesh)
        return ply, glb, obj
