"""4D assets on disk: one standard 3DGS `.ply` per time step and a small JSON with the times and cameras.

A folder holds `frame_0000.ply`, `frame_0001.ply`, … (the same Gaussians, in the same order, at
each time step: any 3DGS viewer opens one of them) and `sequence.json`:

    {"format": "ditkit-gaussians-sequence", "version": 1,
     "frames": ["frame_0000.ply", …], "times": [0.0, …, 1.0],
     "cameras": Cameras.to_dict() or null}

The writers are plain (they write into a folder that exists); a caller that must never leave half
an asset writes into a temporary folder and swaps it in (`python -m gaussians.fit` does, with
`pipelines.core.atomic.atomic_write_dir`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .cameras import Cameras
from .gaussians import Gaussians
from .motion import Gaussians4D
from .ply import read_ply, write_ply

SEQUENCE_JSON = "sequence.json"
SEQUENCE_FORMAT = "ditkit-gaussians-sequence"


def frame_name(index: int) -> str:
    return f"frame_{index:04d}.ply"


def sequence_dict(times, cameras: Cameras | None = None) -> dict:
    """The contents of `sequence.json` for len(times) frames."""
    times = [float(t) for t in torch.as_tensor(times).flatten().tolist()]
    if cameras is not None and len(cameras) != len(times):
        raise ValueError(f"one camera per time step: {len(cameras)} cameras for {len(times)} times")
    return {"format": SEQUENCE_FORMAT, "version": 1, "frames": [frame_name(i) for i in range(len(times))],
            "times": times, "cameras": None if cameras is None else cameras.to_dict()}


def write_ply_sequence(folder: str | os.PathLike, model: Gaussians4D | list[Gaussians], times,
                       cameras: Cameras | None = None) -> list[Path]:
    """Writes a 4D asset into the existing `folder`: a model evaluated at `times` (or one `Gaussians` per
    time), one `.ply` each, and `sequence.json`. Returns the paths written."""
    folder = Path(folder)
    times = torch.as_tensor(times, dtype=torch.float32).flatten()
    frames = [model.at(t) for t in times] if isinstance(model, Gaussians4D) else list(model)
    if len(frames) != len(times):
        raise ValueError(f"one set of Gaussians per time step: {len(frames)} for {len(times)} times")
    paths = []
    with torch.no_grad():
        for i, g in enumerate(frames):
            paths.append(folder / frame_name(i))
            write_ply(paths[-1], g)
    (folder / SEQUENCE_JSON).write_text(json.dumps(sequence_dict(times, cameras), indent=1) + "\n")
    return paths + [folder / SEQUENCE_JSON]


def read_ply_sequence(folder: str | os.PathLike) -> tuple[list[Gaussians], torch.Tensor, Cameras | None]:
    """Reads a 4D asset folder back: (Gaussians per time step, times [T], cameras or None)."""
    folder = Path(folder)
    path = folder / SEQUENCE_JSON
    if not path.is_file():
        raise ValueError(f"{folder}: no {SEQUENCE_JSON}; not a Gaussian sequence folder")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if meta.get("format") != SEQUENCE_FORMAT or len(meta.get("frames", [])) != len(meta.get("times", [None])):
        raise ValueError(f"{path}: not a {SEQUENCE_FORMAT} file, or frames and times differ in number")
    frames = [read_ply(folder / name) for name in meta["frames"]]
    if len({len(g) for g in frames}) > 1:
        raise ValueError(f"{folder}: the frames hold different numbers of Gaussians; a sequence moves one set")
    cameras = Cameras.from_dict(meta["cameras"]) if meta.get("cameras") else None
    return frames, torch.tensor(meta["times"], dtype=torch.float32), cameras


def sequence_arrays(frames: list[Gaussians]):
    """What the 4D reader (`world.reader4d.read_object4d`) takes: centres [T, N, 3], colours [N, 3] in
    [0, 1] (degree 0, first frame), opacities [N] (first frame), as numpy arrays."""
    centres = torch.stack([g.means for g in frames]).detach().cpu().numpy()
    return centres, frames[0].rgb.clamp(0, 1).detach().cpu().numpy(), frames[0].opacities.detach().cpu().numpy()
