"""The app's request handlers: check the inputs, run the shared pipeline under its lock with
`gr.Progress` following the denoising steps, write the result files, report time and speed-up.

They are plain methods (no layout), so tests call them in-process. Whatever goes wrong reaches
the user as a `gr.Error` with one readable line, never a stack trace: `UserError`s as they are,
anything unexpected by its type and first line (the full traceback goes to the server log).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time

import gradio as gr
import torch

from pipelines.core import inputs
from pipelines.core.errors import UserError
from pipelines.t23d.mesh import mesh_from_points
from samplers import split_acceleration, stats

from .models import ModelEntry, ModelRegistry, t23d_not_shipped
from .outputs import OutputFolder
from .speedup import SpeedLog

log = logging.getLogger(__name__)

DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 4.0
DEFAULT_POINTS = 2048
MIN_POINTS, MAX_POINTS = 256, 16384  # the app's range: a mesh needs a few hundred points to close


@contextlib.contextmanager
def shown_to_user():
    """UserError → gr.Error as is; any other failure → gr.Error naming it, traceback only in the log."""
    try:
        yield
    except gr.Error:
        raise
    except UserError as err:
        raise gr.Error(str(err), print_exception=False) from None
    except Exception as err:
        log.exception("generation failed")
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        raise gr.Error(f"generation failed: {type(err).__name__}: {first_line}", print_exception=False) from None


def takes_acceleration(pipe) -> bool:
    return "acceleration" in inspect.signature(pipe.__call__).parameters


class Handlers:
    """Request handlers over one model registry, output folder and speed log (shared by all sessions)."""

    def __init__(self, registry: ModelRegistry, outputs: OutputFolder | None = None, speeds: SpeedLog | None = None):
        self.registry = registry
        self.outputs = outputs or OutputFolder()
        self.speeds = speeds or SpeedLog()

    # ------------------------------------------------------------------ the endpoints

    def t2i(self, prompt, negative_prompt=None, seed=0, steps=DEFAULT_STEPS, guidance=DEFAULT_GUIDANCE, height=0,
            width=0, model=None, method="none", threshold=inputs.DEFAULT_THRESHOLD, interval=2, bottleneck=False,
            progress=gr.Progress()):
        """Text to image → (PNG path, markdown report)."""
        with shown_to_user():
            call, seed, accel = self.common(prompt, negative_prompt, seed, steps, guidance, method, threshold,
                                            interval, bottleneck)
            call.update(height=inputs.side("height", height), width=inputs.side("width", width), output_type="pil")
            entry = self.entry(model, "t2i")
            out, info = self.run(entry, call, accel, progress)
            path = self.outputs.save_image(out.images[0], call["prompt"], seed)
            return str(path), f"Seed {seed}. {info}"

    def t2v(self, prompt, negative_prompt=None, seed=0, steps=DEFAULT_STEPS, guidance=DEFAULT_GUIDANCE, frames=0,
            height=0, width=0, model=None, method="none", threshold=inputs.DEFAULT_THRESHOLD, interval=2,
            bottleneck=False, progress=gr.Progress()):
        """Text to video → (MP4 path, GIF path, markdown report)."""
        with shown_to_user():
            call, seed, accel = self.common(prompt, negative_prompt, seed, steps, guidance, method, threshold,
                                            interval, bottleneck)
            call.update(num_frames=inputs.frames(frames, "frames"), height=inputs.side("height", height),
                        width=inputs.side("width", width), output_type="np")
            entry = self.entry(model, "t2v")
            out, info = self.run(entry, call, accel, progress)
            clip = out.frames[0]  # (F, H, W, 3) in [0, 1]
            fps = entry.pipeline().config.fps
            mp4, gif = self.outputs.save_clip(clip, fps, call["prompt"], seed)
            return str(mp4), str(gif), f"Seed {seed}, {len(clip)} frames at {fps} fps. {info}"

    def t23d(self, prompt, negative_prompt=None, seed=0, steps=DEFAULT_STEPS, guidance=DEFAULT_GUIDANCE,
             points=DEFAULT_POINTS, model=None, method="none", threshold=inputs.DEFAULT_THRESHOLD, interval=2,
             progress=gr.Progress()):
        """Text to 3D → (GLB path: the mesh to show, PLY path: the points, OBJ path, markdown report)."""
        with shown_to_user():
            call, seed, accel = self.common(prompt, negative_prompt, seed, steps, guidance, method, threshold,
                                            interval, False)
            call.update(num_points=inputs.integer("points", points, MIN_POINTS, MAX_POINTS), output_type="np")
            if model in (None, "") and not self.registry.names("t23d"):
                raise UserError(t23d_not_shipped() or "no text-to-3D model is loaded; start the app with "
                                                      "--model-dir naming a text-to-3D pipeline folder")
            entry = self.entry(model, "t23d")
            out, info = self.run(entry, call, accel, progress)
            cloud = out.points[0]  # (N, 3)
            colours = None if out.colours is None else out.colours[0]  # (N, 3) in [0, 1]
            start = time.perf_counter()
            mesh = mesh_from_points(cloud, colours)
            ply, glb, obj = self.outputs.save_shape(cloud, colours, mesh, call["prompt"], seed)
            meshed = time.perf_counter() - start
            return (str(glb), str(ply), str(obj),
                    f"Seed {seed}, {len(cloud)} points{'' if colours is None else ', coloured'}; mesh of "
                    f"{len(mesh.vertices)} vertices in {meshed:.2f} s. {info}")

    # ------------------------------------------------------------------ shared steps

    @staticmethod
    def common(prompt, negative_prompt, seed, steps, guidance, method, threshold, interval, bottleneck):
        """The checks both endpoints share → (pipeline call kwargs, seed, acceleration)."""
        prompt = inputs.prompt(prompt)
        negative = inputs.prompt(negative_prompt, "negative prompt", required=False)
        seed = inputs.seed(seed)
        steps = inputs.steps(steps, "steps")
        guidance = inputs.guidance(guidance, "guidance")
        accel = inputs.acceleration(method, {"threshold": threshold, "interval": interval}, bottleneck,
                                    only_used=True)
        call = dict(prompt=prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance,
                    generator=torch.Generator("cpu").manual_seed(seed))
        return call, seed, accel

    def entry(self, model, kind: str) -> ModelEntry:
        names = self.registry.names(kind)
        if model in (None, "") and names:
            model = names[0]
        return self.registry.get(model, kind)

    def run(self, entry: ModelEntry, call: dict, accel, progress):
        """Loads the model if needed, waits for it, runs it → (pipeline output, report)."""
        if not entry.loaded:
            progress(0, desc=f"loading {entry.name}")
        pipe = entry.pipeline()
        if accel is not None:
            if not takes_acceleration(pipe):
                raise UserError(f"acceleration is not available for {entry.name} yet; set method to none "
                                f"and bottleneck off")
            call = {**call, "acceleration": accel}
        steps = call["num_inference_steps"]

        def on_step(_pipe, i, _t, _tensors):
            progress((min(i + 1, steps), steps), desc="denoising", unit="steps")
            return {}

        if not entry.lock.acquire(blocking=False):
            progress(0, desc=f"waiting for {entry.name}: another request is using it")
            entry.lock.acquire()
        try:
            progress((0, steps), desc="denoising", unit="steps")
            start = time.perf_counter()
            out = pipe(**call, callback_on_step_end=on_step)
            seconds = time.perf_counter() - start
            cached = accel is not None and split_acceleration(accel)[0] is not None
            run_stats = stats(pipe.transformer) if cached and hasattr(pipe, "transformer") else None
            warm = entry.runs > 0
            entry.runs += 1
        finally:
            entry.lock.release()
        key = (entry.name, steps, call["guidance_scale"] > 1.0, call.get("num_frames"), call.get("height"),
               call.get("width"), call.get("num_points"))
        return out, self.speeds.report(key, seconds, accel is not None, run_stats, warm)
