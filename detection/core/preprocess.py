"""The one preprocessing path shared by training, evaluation and serving.

Real and AI images in the seed data differ in size and codec, so every image, whatever its class, is
downsampled to a small canonical square and re-encoded as JPEG at one fixed quality before it becomes
a tensor: neither pixel count nor codec fingerprint survives as a signal.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:  # torch is imported on use: the TensorFlow worker shares this module and must never load it
    import torch

CANONICAL_JPEG_QUALITY = 90
# ImageNet statistics: the nets are torchvision's, so keep their customary input scale.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# How a model wants canonical uint8 pixels scaled; the PyTorch nets and the Keras MobileNetV2 take "imagenet".
INPUT_SCALES = {
    "imagenet": "x / 255, then ImageNet mean/std per channel",
    "unit": "x / 255, in [0, 1]",
    "symmetric": "x / 127.5 - 1, in [-1, 1] (keras.applications mobilenet/inception preprocess_input)",
    "raw": "x as float in [0, 255] (the model rescales inside)",
}


def preprocessing_description(scale: str = "imagenet") -> str:
    """What a model card says about its input: the canonical path, then the scaling."""
    scaling = "ImageNet mean/std normalisation" if scale == "imagenet" else INPUT_SCALES[scale]
    return (
        "decode -> EXIF transpose -> RGB -> Lanczos resize so the short side equals image_size -> centre crop "
        f"image_size x image_size -> JPEG re-encode at quality {CANONICAL_JPEG_QUALITY} -> decode -> {scaling}"
    )


PREPROCESSING_DESCRIPTION = preprocessing_description()
PREPROCESSING_DESCRIPTION = (
    "decode -> EXIF transpose -> RGB -> Lanczos resize so the short side equals image_size -> centre crop "
    f"image_size x image_size -> JPEG re-encode at quality {CANONICAL_JPEG_QUALITY} -> decode -> "
    "ImageNet mean/std normalisation"
)


def image_decode(data: bytes, *, max_pixels: int | None = None) -> Image.Image:
    """Decode bytes to an RGB image with EXIF orientation applied; ValueError if undecodable.

    `max_pixels` (default: Pillow's MAX_IMAGE_PIXELS) is checked from the header, before decoding, so the
    portal can hold one limit for the upload and every decode after it.
    """
    if not data:
        raise ValueError("cannot decode image: no data")
    limit = max_pixels or Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # The limit below decides; Pillow's own error still stops far larger bombs at open().
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if limit and img.width * img.height > limit:
                raise ValueError(f"cannot decode image: {img.width}x{img.height} is over the {limit} pixel limit")
            img.load()
            img = ImageOps.exif_transpose(img)
    except UnidentifiedImageError as exc:
        raise ValueError("cannot decode image: not a recognised image format, or corrupt data") from exc
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image: {exc}") from exc
    if img.mode != "RGB":
        # Flatten transparency onto white so alpha does not turn into black borders.
        if img.mode in ("RGBA", "LA", "P"):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, rgba)
        img = img.convert("RGB")
    return img


def image_resize_short(img: Image.Image, *, short: int) -> Image.Image:
    """Resize so the short side is `short` pixels, keeping the aspect ratio (Lanczos, antialiased)."""
    width, height = img.size
    scale = short / min(width, height)
    target = (max(short, round(width * scale)), max(short, round(height * scale)))
    if target == img.size:
        return img
    # reducing_gap makes big downsamples fast with no visible loss (box pre-shrink, then Lanczos).
    return img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def image_crop_centre(img: Image.Image, *, size: int) -> Image.Image:
    width, height = img.size
    left, top = (width - size) // 2, (height - size) // 2
    return img.crop((left, top, left + size, top + size))


def image_jpeg(img: Image.Image, *, quality: int) -> Image.Image:
    """Round-trip through JPEG at `quality` (4:2:0, like most cameras and the seed data)."""
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    out = Image.open(buffer)
    out.load()
    return out.convert("RGB")


def image_canonical(img: Image.Image, *, size: int) -> Image.Image:
    """The single canonical path: short side -> size, centre crop, fixed-quality JPEG round-trip."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    img = image_crop_centre(image_resize_short(img, short=size), size=size)
    return image_jpeg(img, quality=CANONICAL_JPEG_QUALITY)


def arrays_to_tensor(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 arrays (already canonical) -> normalised float batch N x 3 x H x W."""
    import torch

    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (batch - mean) / std


def arrays_scale(arrays: Sequence[np.ndarray], *, scale: str = "imagenet") -> np.ndarray:
    """uint8 HxWx3 arrays (already canonical) -> float32 batch N x H x W x 3 (channels last, for Keras),
    scaled as `INPUT_SCALES[scale]` says; "imagenet" is the same arithmetic as `arrays_to_tensor`."""
    batch = np.stack(arrays).astype(np.float32)
    if scale == "imagenet":
        return (batch / np.float32(255.0) - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    if scale == "unit":
        return batch / np.float32(255.0)
    if scale == "symmetric":
        return batch / np.float32(127.5) - np.float32(1.0)
    if scale == "raw":
        return batch
    raise ValueError(f"unknown input scale {scale!r}; choose one of {', '.join(INPUT_SCALES)}")


def images_to_tensor(images: Sequence[Image.Image], *, size: int) -> torch.Tensor:
    """Canonicalise each image and stack into a normalised batch N x 3 x size x size."""
    return arrays_to_tensor([np.asarray(image_canonical(img, size=size)) for img in images])
