"""The models the app offers: the shipped defaults plus pipeline folders found under `--model-dir`.

A model is loaded on first use, once, and shared by every session. Each has a lock that a
request holds while the pipeline runs: a pipeline keeps per-call state (scheduler timesteps,
cache hooks and their statistics), so two overlapping calls on one model would trample it.
Different models run side by side.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipelines.core.errors import UserError
from pipelines.t2i import SHIPPED_T2I, load_t2i_pipeline
from pipelines.t23d import RECIPE_T23D, SHIPPED_T23D, load_t23d_pipeline
from pipelines.t2v import SHIPPED_T2V, load_t2v_pipeline
from pipelines.t2v.loading import ADAPTERS

log = logging.getLogger(__name__)

KINDS = {"t2i": "text-to-image", "t2v": "text-to-video", "t23d": "text-to-3D"}
# model_index.json `_class_name` → the tab that serves it (what pipelines.t2i / t2v / t23d can load)
PIPELINE_KINDS = {
    **dict.fromkeys(("TextToImagePipeline", "PixArtAlphaPipeline", "PixArtSigmaPipeline", "DiTPipeline"), "t2i"),
    **dict.fromkeys(("TextToVideoPipeline", *ADAPTERS), "t2v"),
    "T23DPipeline": "t23d",
}
LOADERS = {"t2i": load_t2i_pipeline, "t2v": load_t2v_pipeline, "t23d": load_t23d_pipeline}
MAX_DEPTH = 3  # how deep under a --model-dir to look for pipeline folders


@dataclass(eq=False)
class ModelEntry:
    """One model in the picker: how to load it, and the shared pipeline once loaded."""

    name: str
    kind: str  # "t2i" | "t2v" | "t23d"
    load: Callable[[], object]
    source: str  # what the UI says about where it comes from
    untrained: bool = False  # a stand-in whose outputs are noise: the UI says so
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while the pipeline runs
    runs: int = 0  # finished calls (under `lock`); the first one carries warm-up
    _loading: threading.Lock = field(default_factory=threading.Lock)
    _pipe: object = None

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    def pipeline(self):
        """The shared pipeline, loaded on the first call (a failed load is retried next time)."""
        with self._loading:
            if self._pipe is None:
                pipe = self.load()
                if hasattr(pipe, "set_progress_bar_config"):
                    pipe.set_progress_bar_config(disable=True)  # the app shows its own progress
                self._pipe = pipe
            return self._pipe


class ModelRegistry:
    """Models by name, in picker order; the first of a kind is that tab's default."""

    def __init__(self):
        self._entries: dict[str, ModelEntry] = {}

    def add(self, name: str, kind: str, load: Callable[[], object], source: str, untrained: bool = False) -> ModelEntry:
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; expected one of {list(KINDS)}")
        if name in self._entries:
            raise ValueError(f"a model named {name!r} is already registered")
        entry = ModelEntry(name, kind, load, source, untrained)
        self._entries[name] = entry
        return entry

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self._entries.values() if e.kind == kind]

    def get(self, name: str, kind: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None or entry.kind != kind:
            known = ", ".join(self.names(kind)) or "none"
            raise UserError(f"unknown {KINDS[kind]} model {name!r}; choose one of: {known}")
        return entry

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())


# ---------------------------------------------------------------- building the registry

def t23d_not_shipped() -> str | None:
    """Why the shipped text-to-3D model is not offered (None when it is shipped). Unlike image and
    video there is no untrained stand-in: a cloud of noise would look like an answer."""
    if (SHIPPED_T23D / "model_index.json").is_file():
        return None
    return (f"The text-to-3D model is not shipped yet: train it with `{RECIPE_T23D}`, copy "
            f"`runs/t23d_shapes/pipeline` to `{SHIPPED_T23D.relative_to(SHIPPED_T23D.parents[2])}`, or start the "
            f"app with `--model-dir` naming a folder that holds a text-to-3D pipeline.")


def add_shipped(registry: ModelRegistry) -> None:
    """The shipped Shapes World models (image and video: untrained stand-ins until they are trained;
    3D: only once trained, see `t23d_not_shipped`)."""
    for name, kind, folder, load in (("shapes-t2i", "t2i", SHIPPED_T2I, load_t2i_pipeline),
                                     ("shapes-t2v", "t2v", SHIPPED_T2V, load_t2v_pipeline)):
        trained = (folder / "model_index.json").is_file()
        source = "shipped Shapes World model" if trained else \
            "shipped model, untrained stand-in: outputs are noise until the Shapes World model is trained"
        if trained and kind == "t2v" and (SHIPPED_T2I / "model_index.json").is_file():
            source += " (image first: shapes-t2i draws each clip's first frame)"
        registry.add(name, kind, load, source, untrained=not trained)
    if t23d_not_shipped() is None:
        registry.add("shapes-t23d", "t23d", load_t23d_pipeline, "shipped Shapes World model")


def pipeline_folders(root: Path, depth: int = MAX_DEPTH) -> list[tuple[Path, str]]:
    """(folder, kind) for every loadable pipeline folder under `root`, sorted; a pipeline's own
    subfolders are not searched, and folders of other pipeline classes are skipped with a log line."""
    found = []
    index = root / "model_index.json"
    if index.is_file():
        try:
            kind = PIPELINE_KINDS.get(json.loads(index.read_text(encoding="utf-8")).get("_class_name"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
            log.warning("skipping %s: unreadable model_index.json (%s)", root, err)
            return found
        if kind is None:
            log.warning("skipping %s: not a pipeline ditkit's app can run", root)
        else:
            found.append((root, kind))
        return found
    if depth > 0:
        for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found += pipeline_folders(child, depth - 1)
    return found


def add_folders(registry: ModelRegistry, model_dir: str | Path) -> None:
    """Every pipeline folder under `model_dir`, named by its path below it."""
    root = Path(model_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"--model-dir {model_dir} is not a folder")
    for folder, kind in pipeline_folders(root):
        name = folder.relative_to(root).as_posix() if folder != root else folder.name
        if any(name in registry.names(k) for k in KINDS):
            name = str(folder)
        registry.add(name, kind, lambda f=folder, load=LOADERS[kind]: load(f), str(folder))


def default_registry(model_dirs=()) -> ModelRegistry:
    """The shipped models first (so they are the defaults), then the folders under each model dir."""
    registry = ModelRegistry()
    add_shipped(registry)
    for model_dir in model_dirs:
        add_folders(registry, model_dir)
    return registry
