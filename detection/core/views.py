"""What the multi-view detector looks at: one working image, then a global view and crops at its own scale.

The 128 px canonical square of the first models shows neither fine detail nor the sides of a wide photo.
Here every image, whatever its class or size, is first brought to one *working image*: short side shrunk
to at most `WORKING_SHORT` px (the newer shared sets are stored that way; uploads are far larger), then
JPEG-encoded at one fixed quality, so size and codec carry no class signal. From it come the global
view (the whole frame squashed to the encoder's square, sides included) and crops of that square at the
working image's own scale along the long side (fine detail, no further downscaling). A detector may also
look at the working image shrunk again to smaller short sides (`views_pyramid`): the same content at the
scales other sets were trained at, so a head does not meet a scale for the first time in production.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from detection.core.preprocess import CANONICAL_JPEG_QUALITY, image_jpeg

WORKING_SHORT = 320
VIEW_SIZE = 224
RECIPE = f"working{WORKING_SHORT}-jpeg{CANONICAL_JPEG_QUALITY}-global-crops{VIEW_SIZE}-v1"


def image_working(img: Image.Image, *, short: int = WORKING_SHORT) -> Image.Image:
    """RGB image with its short side at most `short` (Lanczos; never enlarged), re-encoded as JPEG."""
    img = img.convert("RGB")
    width, height = img.size
    if min(width, height) > short:
        scale = short / min(width, height)
        img = img.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)
    return image_jpeg(img, quality=CANONICAL_JPEG_QUALITY)


def image_at_least(image: Image.Image, *, size: int = VIEW_SIZE) -> Image.Image:
    """`image` enlarged (bicubic) so its short side is at least `size`, for crops of that size; the 150 px
    seed photos take this path, both classes alike."""
    width, height = image.size
    if min(width, height) >= size:
        return image
    scale = size / min(width, height)
    return image.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC)


def crop_boxes(width: int, height: int, *, count: int, size: int = VIEW_SIZE) -> list[tuple[int, int, int, int]]:
    """`count` size x size boxes spread evenly along the long side, centred on the short side."""
    if count == 1:
        left, top = (width - size) // 2, (height - size) // 2
        return [(left, top, left + size, top + size)]
    boxes = []
    for index in range(count):
        fraction = index / (count - 1)
        if width >= height:
            left, top = round((width - size) * fraction), (height - size) // 2
        else:
            left, top = (width - size) // 2, round((height - size) * fraction)
        boxes.append((left, top, left + size, top + size))
    return boxes


def views_make(working: Image.Image, *, crops: int, size: int = VIEW_SIZE) -> np.ndarray:
    """uint8 array (1 + crops) x size x size x 3: the global view, then the crops.

    A working image whose short side is under `size` (the 150 px seed photos) is enlarged to it for the
    crops: both classes of such a set alike.
    """
    global_view = working.resize((size, size), Image.Resampling.BICUBIC)
    working = image_at_least(working, size=size)
    arrays = [np.asarray(global_view)]
    arrays += [np.asarray(working.crop(box)) for box in crop_boxes(*working.size, count=crops, size=size)]
    return np.stack(arrays)


def rescale_needed(short_side: int, *, short: int) -> bool:
    """Whether a working image with this short side is shrunk for the scale `short`: one no larger (the
    150 px seed photos) is looked at as it is, never enlarged, and not re-encoded for nothing."""
    return short_side > short


def image_rescaled(working: Image.Image, *, short: int) -> Image.Image:
    """`working` shrunk again to a short side of `short` and re-encoded, where `rescale_needed`."""
    return image_working(working, short=short) if rescale_needed(min(working.size), short=short) else working


def views_pyramid(working: Image.Image, *, crops: int, scales: Sequence[int] = ()) -> np.ndarray:
    """The views of `working`, then those of `image_rescaled(working, short)` for each short side in
    `scales`: (1 + len(scales)) * (1 + crops) views, scale by scale."""
    layers = [views_make(working, crops=crops)]
    layers += [views_make(image_rescaled(working, short=short), crops=crops) for short in scales]
    return np.concatenate(layers)
