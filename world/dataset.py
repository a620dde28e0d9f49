"""Training batches drawn on the fly, fixed evaluation prompts, and tensor <-> pixel helpers.

Nothing is stored on disk: a batch is rendered from a seed in a few milliseconds, so an
epoch is whatever the training loop asks for and the held-out combinations are never drawn.
"""

from __future__ import annotations

import numpy as np
import torch

from .captions import caption, video_caption
from .render import render_image, render_video
from .scene import ImageSpec, as_rng, is_held_out, sample_spec, split_specs
from .video_scene import DEFAULT_START, VideoSpec, is_valid_clip, sample_video_spec, video_split_specs
from .vocab import CLIP_ATTRIBUTES, IMAGE_ATTRIBUTES, MOTIONS


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).movedim(-1, -3).contiguous()
    return x.to(torch.float32).mul_(1 / 127.5).sub_(1.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] (a model's output) -> uint8 (..., H, W, 3) for the oracle."""
    x = ((x.detach().to("cpu", torch.float32).clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).movedim(-3, -1).numpy()


def make_batch(n: int, resolution: int = 64, rng_or_seed=0, split: str = "train",
               drop_prob: float = 0.3, paraphrase: bool = False
               ) -> tuple[torch.Tensor, list[str], list[ImageSpec]]:
    """n random images with captions: ((n, 3, H, W) float32 in [-1, 1], captions, specs).

    Deterministic given an integer seed; pass a numpy Generator to continue a stream.
    Captions leave out size / position / background with probability `drop_prob` each.
    """
    rng = as_rng(rng_or_seed)
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    captions, specs = [], []
    for i in range(n):
        spec = sample_spec(rng, split)
        captions.append(caption(spec, rng, paraphrase=paraphrase, drop_prob=drop_prob))
        images[i] = render_image(spec, resolution, rng)
        specs.append(spec)
    return images_to_tensor(images), captions, specs


def _draw_twin(spec, attribute: str, vocabulary: dict, rng, split: str, build, image_of):
    """A copy of `spec` with `attribute` changed to another value of `vocabulary`, drawn uniformly
    among the `build(fields)` results that are not None and whose scene (`image_of`) is in `split`;
    `spec` itself when none is. Image and clip twins differ only in `build` and `image_of`."""
    if attribute not in vocabulary:
        raise ValueError(f"unknown contrast attribute {attribute!r}; expected one of {sorted(vocabulary)}")
    split_specs(split)  # validates the split's name
    options = []
    for value in vocabulary[attribute]:
        if value == getattr(spec, attribute):
            continue
        twin = build({**spec.as_dict(), attribute: value})
        if twin is not None and (split == "any" or is_held_out(image_of(twin)) == (split == "heldout")):
            options.append(twin)
    return options[int(rng.integers(len(options)))] if options else spec


def twin_spec(spec: ImageSpec, attribute: str, rng, split: str = "train") -> ImageSpec:
    """`spec` with `attribute` changed to another value drawn uniformly among those that keep the
    combination in `split` (the spec itself when no other value does)."""
    return _draw_twin(spec, attribute, IMAGE_ATTRIBUTES, rng, split, lambda fields: ImageSpec(**fields),
                      lambda twin: twin)


def make_contrast_batch(n: int, resolution: int = 64, rng_or_seed=0, split: str = "train",
                        drop_prob: float = 0.3, paraphrase: bool = False, attribute: str = "shape"
                        ) -> tuple[torch.Tensor, list[str], list[ImageSpec]]:
    """Like `make_batch`, but items 2k and 2k+1 are twins: the same scene, jitter and caption
    wording, differing only in `attribute` (n must be even).

    Why: a detail such as shape changes few pixels, so in a batch of unrelated scenes its share of
    the loss gradient drowns in the noise of everything else; a twin pair trained on the same noise
    and sigma (training.data) cancels what the two share and leaves the difference the caption's
    word must explain. Every item is a scene of the split.
    """
    def draw_pair(rng):
        spec = sample_spec(rng, split)
        return spec, twin_spec(spec, attribute, rng, split)

    return _twin_batch(n, rng_or_seed, (resolution, resolution, 3), draw_pair,
                       lambda s, rng: caption(s, rng, paraphrase=paraphrase, drop_prob=drop_prob),
                       lambda s, rng: render_image(s, resolution, rng))


def _twin_batch(n: int, rng_or_seed, item_shape: tuple[int, ...], draw_pair, describe, render):
    """n/2 twin pairs from `draw_pair(rng)`, each pair sharing one caption rng (its wording) and one
    jitter rng: → (pixels as a float tensor in [-1, 1], captions, specs)."""
    if n % 2:
        raise ValueError(f"a contrast batch needs an even size, got {n}")
    rng = as_rng(rng_or_seed)
    pixels = np.empty((n, *item_shape), dtype=np.uint8)
    captions, specs = [], []
    for k in range(n // 2):
        pair = draw_pair(rng)
        caption_seed, jitter_seed = rng.integers(2**63, size=2)
        for i, s in enumerate(pair):
            captions.append(describe(s, np.random.default_rng(caption_seed)))
            pixels[2 * k + i] = render(s, np.random.default_rng(jitter_seed))
            specs.append(s)
    return images_to_tensor(pixels), captions, specs


def make_video_batch(n: int, resolution: int = 32, num_frames: int = 16, rng_or_seed=0,
                     split: str = "train", drop_prob: float = 0.3
                     ) -> tuple[torch.Tensor, list[str], list[VideoSpec]]:
    """n random clips with captions: ((n, T, 3, H, W) float32 in [-1, 1], captions, specs)."""
    rng = as_rng(rng_or_seed)
    clips = np.empty((n, num_frames, resolution, resolution, 3), dtype=np.uint8)
    captions, specs = [], []
    for i in range(n):
        spec = sample_video_spec(rng, split)
        captions.append(video_caption(spec, rng, drop_prob=drop_prob))
        clips[i] = render_video(spec, num_frames=num_frames, resolution=resolution, rng=rng)
        specs.append(spec)
    return images_to_tensor(clips), captions, specs


def twin_video_spec(spec: VideoSpec, attribute: str, rng, split: str = "train") -> VideoSpec:
    """`spec` with `attribute` (an image attribute or the motion) changed to another value drawn
    uniformly among those that keep the clip drawable (`is_valid_clip`) and in `split`; the spec
    itself when no other value does."""
    def build(fields):
        start = fields["position"] if fields["position"] is not None else DEFAULT_START[fields["motion"]]
        return VideoSpec(**fields) if is_valid_clip(fields["size"], fields["shape"], start, fields["motion"]) else None

    return _draw_twin(spec, attribute, CLIP_ATTRIBUTES, rng, split, build, VideoSpec.image_spec)


def make_video_contrast_batch(n: int, resolution: int = 32, num_frames: int = 16, rng_or_seed=0,
                              split: str = "train", drop_prob: float = 0.3, attribute: str = "shape"
                              ) -> tuple[torch.Tensor, list[str], list[VideoSpec]]:
    """Like `make_video_batch`, but clips 2k and 2k+1 are twins: the same scene, start jitter and
    caption wording, differing only in `attribute` (n must be even) — `make_contrast_batch` for
    clips, for the same reason: a shape is a few pixels of each frame."""
    def draw_pair(rng):
        spec = sample_video_spec(rng, split)
        return spec, twin_video_spec(spec, attribute, rng, split)

    return _twin_batch(n, rng_or_seed, (num_frames, resolution, resolution, 3), draw_pair,
                       lambda s, rng: video_caption(s, rng, drop_prob=drop_prob),
                       lambda s, rng: render_video(s, num_frames=num_frames, resolution=resolution, rng=rng))


def eval_specs(n: int, split: str = "heldout", seed: int = 0) -> list[ImageSpec]:
    """A fixed, balanced list of n specs: the split's combinations in a seeded order, repeated
    as needed, so every combination appears before any appears twice."""
    specs = split_specs(split)
    order = np.random.default_rng(seed).permutation(len(specs))
    return [specs[int(order[i % len(specs)])] for i in range(n)]


def eval_prompts(n: int, split: str = "heldout", seed: int = 0) -> list[str]:
    """Full canonical captions of `eval_specs(n, split, seed)`."""
    return [caption(spec) for spec in eval_specs(n, split, seed)]


def video_eval_specs(n: int, split: str = "heldout", seed: int = 0) -> list[VideoSpec]:
    """A fixed list of n clip specs: motions in turn, each motion's clips of the split in a seeded
    order (repeated as needed), so every motion is equally represented."""
    rng = np.random.default_rng(seed)
    pools = {m: video_split_specs(split, m) for m in MOTIONS}
    motions = [m for m in MOTIONS if pools[m]]
    orders = {m: rng.permutation(len(pools[m])) for m in motions}
    return [pools[m][int(orders[m][(i // len(motions)) % len(pools[m])])]
            for i, m in ((i, motions[i % len(motions)]) for i in range(n))]


def video_eval_prompts(n: int, split: str = "heldout", seed: int = 0) -> list[str]:
    """Full canonical captions of `video_eval_specs` (every attribute stated, start position
    included): with the held-out split, wordings no training caption can have, since training
    never renders a held-out size/colour/shape/position/background combination in any motion."""
    return [video_caption(spec) for spec in video_eval_specs(n, split, seed)]
