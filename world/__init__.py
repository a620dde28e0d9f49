"""Shapes World: the procedural images and clips ditkit trains on, and the oracle that checks them.

The vocabulary and geometry are fixed by WORLD.md; see `vocab` for the words, `render` for the
pixels, `captions` for the grammar, `oracle` / `video_oracle` for reading samples back and scoring them.
"""

from .captions import (canonical_caption, caption, first_frame_caption, paraphrases, parse_caption,
                       parse_video_caption, video_caption)
from .dataset import (eval_prompts, eval_specs, images_to_tensor, make_batch, make_contrast_batch,
                      make_video_batch, make_video_contrast_batch,
                      tensor_to_images, video_eval_prompts, video_eval_specs)
from .layout import Pose, clip_poses, image_pose
from .oracle import read_image, score
from .render import render_image, render_video
from .scene import ImageSpec, all_specs, is_held_out, sample_spec, split_specs
from .video_oracle import read_video, score_video
from .video_scene import VideoSpec, is_valid_clip, sample_video_spec, video_split_specs
from .vocab import BACKGROUNDS, COLOURS, MOTIONS, POSITIONS, SHAPES, SIZES

__all__ = [
    "BACKGROUNDS", "COLOURS", "MOTIONS", "POSITIONS", "SHAPES", "SIZES",
    "ImageSpec", "VideoSpec", "Pose", "all_specs", "split_specs", "is_held_out", "sample_spec",
    "sample_video_spec", "is_valid_clip", "video_split_specs", "image_pose", "clip_poses",
    "render_image", "render_video",
    "caption", "canonical_caption", "first_frame_caption", "paraphrases", "video_caption", "parse_caption",
    "parse_video_caption",
    "read_image", "score", "read_video", "score_video",
    "make_batch", "make_contrast_batch", "make_video_batch", "make_video_contrast_batch", "eval_prompts",
    "eval_specs", "images_to_tensor",
    "tensor_to_images", "video_eval_prompts", "video_eval_specs",
]
