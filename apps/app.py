"""The Gradio app: a tab per pipeline (text to image, text to video, text to 3D), a gallery of this
session's images and clips, and the named API endpoints `/t2i`, `/t2v` and `/t23d`.

Layout only: the handlers (`apps.handlers`) do the work. Every endpoint's first parameter is the
prompt and every other one has the widget's value as its default, so
`Client(url).predict("a red circle", api_name="/t2i")` works. The generation events skip
Gradio's own input checks (`preprocess=False`) so every bad value, from the page or an API
client, gets the handlers' message naming the field.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr
import numpy as np

import world
from pipelines.core import inputs
from samplers import METHODS, make_config, method_knobs

from world.shapes3d import caption3d, split_specs3d

from .handlers import DEFAULT_GUIDANCE, DEFAULT_POINTS, DEFAULT_STEPS, MAX_POINTS, MIN_POINTS, Handlers
from .models import ModelRegistry, default_registry, t23d_not_shipped

MAX_HISTORY = 48  # results kept in a session's gallery
EXAMPLES = 8  # example prompts per tab
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky")
# Shapes World samples are a few dozen pixels wide: scale them up without blurring.
CSS = """
#t2i-image img, #t2v-video video { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
#history img, #history video { image-rendering: pixelated; }
.seed-button { align-self: center; }
"""


@dataclass
class Form:
    """The widgets the tabs share, in the order the endpoints take them (after the size widgets)."""

    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    seed: gr.Number
    steps: gr.Slider
    guidance: gr.Slider
    sizes: list  # t2v: frames, height, width; t2i: height, width; t23d: points
    model: gr.Dropdown
    method: gr.Dropdown
    threshold: gr.Slider
    interval: gr.Slider
    bottleneck: gr.Checkbox | None  # None where it does not apply (point clouds have no image grid)
    generate: gr.Button

    @property
    def inputs(self) -> list:
        return [self.prompt, self.negative_prompt, self.seed, self.steps, self.guidance, *self.sizes, self.model,
                self.method, self.threshold, self.interval, *([self.bottleneck] if self.bottleneck else [])]


# ---------------------------------------------------------------- widgets

def size_sliders(kind: str) -> list:
    """0 means the model's own size (frames: its default count); the model checks its grid.
    Text to 3D: the number of points instead."""
    if kind == "t23d":
        return [gr.Slider(MIN_POINTS, MAX_POINTS, DEFAULT_POINTS, step=256, label="Points",
                          info="points in the cloud; the mesh is made from them")]
    sliders = []
    if kind == "t2v":
        sliders.append(gr.Slider(0, 64, 0, step=1, label="Frames", info="0: the model's default"))
    with gr.Row():
        for side in ("Height", "Width"):
            sliders.append(gr.Slider(0, 1024, 0, step=8, label=side, info="0: the model's native size"))
    return sliders


def acceleration_widgets(kind: str) -> tuple:
    """Method, its knobs (shown when the method takes them) and bottleneck sampling (not for 3D: None)."""
    with gr.Accordion("Acceleration", open=False):
        gr.Markdown("Training-free: cache the transformer's blocks between steps"
                    + (". " if kind == "t23d" else ", or sample the middle steps at a lower resolution. ")
                    + "The report under the result shows the measured speed-up.")
        method = gr.Dropdown(list(METHODS), value="none", label="Caching method", elem_id=f"{kind}-method")
        threshold = gr.Slider(0.0, 0.5, inputs.DEFAULT_THRESHOLD, step=0.01, label="Threshold", visible=False,
                              info="reuse cached blocks while the change stays below this")
        interval = gr.Slider(1, 10, 2, step=1, label="Interval", visible=False, info="a full step every N steps")
        bottleneck = None if kind == "t23d" else gr.Checkbox(False, label="Bottleneck sampling",
                                                             info="flow-matching models: middle steps at 5/8 size")

    def show_knobs(name):
        """The method's knobs, at its own defaults (thresholds differ by an order of magnitude)."""
        if name not in METHODS or name == "none":
            return gr.Slider(visible=False), gr.Slider(visible=False)
        config, knobs = make_config(name), method_knobs(name)
        return (gr.Slider(visible=True, value=config.threshold) if "threshold" in knobs else gr.Slider(visible=False),
                gr.Slider(visible=True, value=config.interval) if "interval" in knobs else gr.Slider(visible=False))

    method.change(show_knobs, method, [threshold, interval], api_visibility="private", queue=False)
    return method, threshold, interval, bottleneck


def form(kind: str, registry: ModelRegistry) -> Form:
    """The left column of a tab: prompt, Generate, settings, acceleration."""
    names = registry.names(kind)
    placeholder = "a tall red cone" if kind == "t23d" else "a large red circle in the top left on a white background"
    prompt = gr.Textbox(label="Prompt", lines=1, max_lines=3, elem_id=f"{kind}-prompt",  # one line: Enter submits
                        placeholder=placeholder)
    generate = gr.Button("Generate", variant="primary", elem_id=f"{kind}-generate")
    with gr.Accordion("Settings", open=True):
        model = gr.Dropdown(names, value=names[0] if names else None, label="Model",
                            info=registry.get(names[0], kind).source if names else None)
        negative = gr.Textbox(label="Negative prompt", placeholder="what to steer away from (optional)")
        with gr.Row():
            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=inputs.MAX_SEED, scale=3)
            dice = gr.Button("Random seed", scale=1, min_width=110, elem_classes="seed-button")
        with gr.Row():
            steps = gr.Slider(1, 100, DEFAULT_STEPS, step=1, label="Steps")
            guidance = gr.Slider(0.0, 15.0, DEFAULT_GUIDANCE, step=0.5, label="Guidance",
                                 info="≤ 1 turns classifier-free guidance off")
        sizes = size_sliders(kind)
    method, threshold, interval, bottleneck = acceleration_widgets(kind)

    dice.click(lambda: random.randint(0, inputs.MAX_SEED), None, seed, api_visibility="private", queue=False)
    sources = {e.name: e.source for e in registry.entries()}
    model.change(lambda name: gr.Dropdown(info=sources.get(name)), model, model, api_visibility="private",
                 queue=False)
    return Form(prompt, negative, seed, steps, guidance, sizes, model, method, threshold, interval, bottleneck,
                generate)


def example_prompts(kind: str) -> list[list[str]]:
    """Shapes World captions the shipped models know (training split, a fixed draw)."""
    if kind == "t23d":
        specs = split_specs3d("train")
        prompts = [caption3d(specs[i]) for i in np.random.default_rng(6).choice(len(specs), EXAMPLES, replace=False)]
    elif kind == "t2i":
        prompts = world.eval_prompts(EXAMPLES, split="train", seed=6)
    else:
        prompts = world.video_eval_prompts(EXAMPLES, split="train", seed=6)
    return [[p] for p in prompts]


# ---------------------------------------------------------------- the session gallery

def remember(history: list, path, caption: str) -> list:
    """This session's results with one more (the newest MAX_HISTORY)."""
    return [*history, (path, caption)][-MAX_HISTORY:] if path else history


def image_done(history: list, image, prompt: str):
    """After an image: into the gallery, and the PNG download on → (history, gallery, download)."""
    history = remember(history, image, prompt)
    return history, history, gr.DownloadButton(value=image, interactive=True)


def clip_done(history: list, clip, animation, prompt: str):
    """After a clip: its GIF into the gallery (it plays there), both downloads on."""
    history = remember(history, animation, prompt)
    return history, history, gr.DownloadButton(value=clip, interactive=True), gr.DownloadButton(interactive=True)


def shape_done(ply, glb, obj):
    """After a shape: its three downloads on."""
    return (gr.DownloadButton(value=ply, interactive=True), gr.DownloadButton(value=glb, interactive=True),
            gr.DownloadButton(value=obj, interactive=True))


# ---------------------------------------------------------------- tabs

def t2i_tab(handlers: Handlers, history: gr.State, gallery: gr.Gallery, limit: int) -> None:
    """Form and examples left; the image, its report and the PNG download right; endpoint `/t2i`."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            f = form("t2i", handlers.registry)
            gr.Examples(example_prompts("t2i"), [f.prompt], label="Shapes World prompts")
        with gr.Column(scale=6):
            image = gr.Image(label="Image", type="filepath", format="png", interactive=False, elem_id="t2i-image",
                             height=420)
            info = gr.Markdown(label="Report", elem_id="t2i-info")
            png = gr.DownloadButton("Download PNG", interactive=False, elem_id="t2i-download")
    event = gr.on([f.generate.click, f.prompt.submit], handlers.t2i, f.inputs, [image, info], api_name="t2i",
                  api_description="Text to image: the prompt, then optional settings; returns the PNG and a "
                                  "report (seed, time, speed-up).",
                  preprocess=False, concurrency_limit=limit, concurrency_id="generate")
    event.success(image_done, [history, image, f.prompt], [history, gallery, png], api_visibility="private",
                  queue=False)


def t2v_tab(handlers: Handlers, history: gr.State, gallery: gr.Gallery, limit: int) -> None:
    """Form and examples left; the clip, its report, MP4 and GIF downloads right; endpoint `/t2v`."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            f = form("t2v", handlers.registry)
            gr.Examples(example_prompts("t2v"), [f.prompt], label="Shapes World prompts")
        with gr.Column(scale=6):
            video = gr.Video(label="Clip", format="mp4", interactive=False, autoplay=True, loop=True,
                             elem_id="t2v-video", height=420)
            info = gr.Markdown(label="Report", elem_id="t2v-info")
            with gr.Row():
                mp4 = gr.DownloadButton("Download MP4", interactive=False, elem_id="t2v-download-mp4")
                gif = gr.DownloadButton("Download GIF", interactive=False, elem_id="t2v-download-gif")
    event = gr.on([f.generate.click, f.prompt.submit], handlers.t2v, f.inputs, [video, gif, info], api_name="t2v",
                  api_description="Text to video: the prompt, then optional settings; returns the MP4, the GIF and "
                                  "a report (seed, frames, time, speed-up).",
                  preprocess=False, concurrency_limit=limit, concurrency_id="generate")
    event.success(clip_done, [history, video, gif, f.prompt], [history, gallery, mp4, gif], api_visibility="private",
                  queue=False)


def t23d_tab(handlers: Handlers, limit: int) -> None:
    """Form and examples left; the mesh (a point-cloud .ply shows blank in Model3D, so the .glb), its
    report and the .ply / .glb / .obj downloads right; endpoint `/t23d`. Without a text-to-3D model
    the tab says why and how to get one."""
    missing = t23d_not_shipped() if not handlers.registry.names("t23d") else None
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            if missing:
                gr.Markdown(f"**No text-to-3D model here.** {missing}", elem_id="t23d-missing")
            f = form("t23d", handlers.registry)
            gr.Examples(example_prompts("t23d"), [f.prompt], label="Shapes World prompts")
        with gr.Column(scale=6):
            shape = gr.Model3D(label="Mesh", interactive=False, elem_id="t23d-model", height=420,
                               clear_color=(0.12, 0.12, 0.14, 1.0), camera_position=(45, 65, 4))
            info = gr.Markdown(label="Report", elem_id="t23d-info")
            with gr.Row():
                ply = gr.DownloadButton("Download PLY (points)", interactive=False, elem_id="t23d-download-ply")
                glb = gr.DownloadButton("Download GLB", interactive=False, elem_id="t23d-download-glb")
                obj = gr.DownloadButton("Download OBJ", interactive=False, elem_id="t23d-download-obj")
    # the endpoint's other outputs, feeding the downloads
    ply_path, obj_path = gr.File(label="Point cloud (.ply)", visible=False), gr.File(label="Mesh (.obj)", visible=False)
    event = gr.on([f.generate.click, f.prompt.submit], handlers.t23d, f.inputs, [shape, ply_path, obj_path, info],
                  api_name="t23d",
                  api_description="Text to 3D: the prompt, then optional settings; returns the mesh (.glb), the "
                                  "point cloud (.ply), the mesh as .obj and a report (seed, points, time).",
                  preprocess=False, concurrency_limit=limit, concurrency_id="generate")
    event.success(shape_done, [ply_path, shape, obj_path], [ply, glb, obj], api_visibility="private", queue=False)


# ---------------------------------------------------------------- the app

def header(registry: ModelRegistry) -> None:
    """Title, one line on what to do, and a note when a model offered is an untrained stand-in."""
    gr.Markdown("# ditkit\nDiffusion transformers on a laptop CPU: type a prompt, press **Generate** "
                "(or Enter), then try an acceleration method and compare the times.")
    untrained = [e.name for e in registry.entries() if e.untrained]
    if untrained:
        gr.Markdown(f"**Note:** {', '.join(untrained)}: untrained stand-ins until the Shapes World models are "
                    "trained; their outputs are noise.")


def build_app(registry: ModelRegistry | None = None, handlers: Handlers | None = None, concurrency: int = 2,
              queue_size: int = 64) -> gr.Blocks:
    """The app over `registry` (default: shipped models); `concurrency` requests generate at once, at
    most one per model (the model's lock), and up to `queue_size` wait."""
    handlers = handlers or Handlers(registry or default_registry())
    # delete_cache: Gradio's copies of results older than a day go, checked hourly
    with gr.Blocks(title="ditkit", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        history = gr.State([])
        gallery = gr.Gallery(label="This session", columns=8, fit_columns=False, height=240, object_fit="contain",
                             elem_id="history", render=False, interactive=False)
        header(handlers.registry)
        with gr.Tabs():
            with gr.Tab("Text to image", id="t2i"):
                t2i_tab(handlers, history, gallery, concurrency)
            with gr.Tab("Text to video", id="t2v"):
                t2v_tab(handlers, history, gallery, concurrency)
            with gr.Tab("Text to 3D", id="t23d"):
                t23d_tab(handlers, concurrency)
        gallery.render()
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, share: bool = False, **kwargs):
    """`demo.launch` with ditkit's theme; `kwargs` go to Gradio (e.g. prevent_thread_lock=True)."""
    return demo.launch(server_name=host, server_port=port, share=share, theme=THEME, css=CSS,
                       footer_links=["api", "gradio"], **kwargs)
