"""The words of Shapes World and what each one means, exactly as docs/WORLD.md fixes them.

Every other module (renderer, captions, oracle) reads its vocabulary from here, so a word can
never mean two things in two places. Dict order is the canonical order used for enumeration.
"""

from __future__ import annotations

# Object colours, RGB 0-255.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 70, 230),
    "yellow": (240, 220, 30),
    "cyan": (30, 210, 220),
    "magenta": (220, 40, 210),
}

# Background colours, RGB 0-255.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

# Object extent as a fraction of the image side.
SIZES: dict[str, float] = {"small": 1 / 3, "large": 1 / 2}

# Position word -> (row, col) of its cell in the 3x3 grid; row 0 is the top, col 0 the left.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top": (0, 1),
    "top right": (0, 2),
    "left": (1, 0),
    "center": (1, 1),
    "right": (1, 2),
    "bottom left": (2, 0),
    "bottom": (2, 1),
    "bottom right": (2, 2),
}

# Each attribute of a still image and the words it can take (ImageSpec's fields, in order).
IMAGE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZES), "position": tuple(POSITIONS),
    "background": tuple(BACKGROUNDS),
}

# Video motions.
MOTIONS: tuple[str, ...] = ("moving left", "moving right", "moving up", "moving down",
                            "growing", "shrinking", "spinning", "still")

# Each attribute of a clip and the words it can take: the first frame's, plus the motion.
CLIP_ATTRIBUTES: dict[str, tuple[str, ...]] = {**IMAGE_ATTRIBUTES, "motion": MOTIONS}

# Maximum centre jitter as a fraction of the side.
JITTER: float = 1 / 20

# Cross arms are one third of the extent wide.
CROSS_ARM: float = 1 / 3
