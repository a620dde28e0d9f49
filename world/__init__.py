"""Shapes World: the procedural images and clips ditkit trains on, and the oracle that checks them.

The vocabulary and geometry are fixed by docs/WORLD.md; see `vocab` for the words, `render` for the
pixels, `captions` for the grammar. Samples are read back and scored by the strict reader
(`strict_reader` / `strict_video_reader`: what a person sees, with fidelity figures), the
default `read_image` / `score` / `read_video` / `score_video`. The older tolerant reader
(`oracle` / `video_oracle`: soft alpha of the largest blob, first-frame shape for clips) stays
available as `read_image_tolerant` / `score_tolerant` / `read_video_tolerant` / `score_video_tolerant`.
4D objects (`objects4d`: a coloured solid and a motion, surface points per time step) are read back
from a Gaussian sequence's centres by `read_object4d` (`reader4d`).
"""

from .captions import (canonical_caption, caption, first_frame_caption, paraphrases, parse_caption,
                       parse_video_caption, video_caption)
from .dataset import (eval_prompts, eval_specs, images_to_tensor, make_batch, make_contrast_batch,
                      make_video_batch, make_video_contrast_batch,
                      tensor_to_images, video_eval_prompts, video_eval_specs)
from .layout import Pose, clip_poses, image_pose
from .objects4d import (MOTIONS4D, Object4DSample, Object4DSpec, all_specs4d, caption4d, parse_caption4d,
                        sample_object4d, spread_specs4d)
from .oracle import read_image as read_image_tolerant
from .oracle import score as score_tolerant
from .reader4d import Object4DReading, read_object4d, score4d
from .render import render_image, render_video
from .scene import ImageSpec, all_specs, is_held_out, sample_spec, split_specs
from .strict_reader import ImageReading, read_image, score
from .strict_video_reader import ClipReading, read_video, score_video
from .video_oracle import read_video as read_video_tolerant
from .video_oracle import score_video as score_video_tolerant
from .video_scene import VideoSpec, is_valid_clip, sample_video_spec, video_split_specs
from .vocab import BACKGROUNDS, COLOURS, MOTIONS, POSITIONS, SHAPES, SIZES

__all__ = [
    "MOTIONS4D", "Object4DSpec", "Object4DSample", "Object4DReading", "all_specs4d", "caption4d", "parse_caption4d",
    "sample_object4d", "spread_specs4d", "read_object4d", "score4d",
    "BACKGROUNDS", "COLOURS", "MOTIONS", "POSITIONS", "SHAPES", "SIZES",
    "ImageSpec", "VideoSpec", "Pose", "all_specs", "split_specs", "is_held_out", "sample_spec",
    "sample_video_spec", "is_valid_clip", "video_split_specs", "image_pose", "clip_poses",
    "render_image", "render_video",
    "caption", "canonical_caption", "first_frame_caption", "paraphrases", "video_caption", "parse_caption",
    "parse_video_caption",
    "read_image", "score", "read_video", "score_video", "ImageReading", "ClipReading",
    "read_image_tolerant", "score_tolerant", "read_video_tolerant", "score_video_tolerant",
    "make_batch", "make_contrast_batch", "make_video_batch", "make_video_contrast_batch", "eval_prompts",
    "eval_specs", "images_to_tensor",
    "tensor_to_images", "video_eval_prompts", "video_eval_specs",
]
