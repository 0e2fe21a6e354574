import io

import numpy as np
import pytest
import torch
from PIL import Image

from detection.core.preprocess import image_canonical, image_decode, images_to_tensor


def _encoded(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    return Image.fromarray(np.broadcast_to((x + y) / 2, (height, width, 3)).astype(np.uint8))


def test_decode_rejects_garbage_with_a_clear_value_error():
    with pytest.raises(ValueError, match="cannot decode image"):
        image_decode(b"definitely not an image")
    with pytest.raises(ValueError, match="no data"):
        image_decode(b"")


def test_decode_returns_rgb_for_greyscale_and_transparent_images():
    grey = image_decode(_encoded(Image.new("L", (20, 10), 100), "PNG"))
    rgba = image_decode(_encoded(Image.new("RGBA", (20, 10), (0, 0, 0, 0)), "PNG"))
    assert grey.mode == rgba.mode == "RGB"
    assert rgba.getpixel((0, 0)) == (255, 255, 255)


def test_decode_applies_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = _encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif.tobytes())
    assert image_decode(data).size == (20, 40)


def test_canonical_gives_the_same_size_whatever_the_source_size_and_codec():
    big_webp = image_decode(_encoded(_gradient(1024, 768), "WEBP", quality=90))
    small_jpeg = image_decode(_encoded(_gradient(150, 150), "JPEG", quality=75))
    for img in (big_webp, small_jpeg):
        out = image_canonical(img, size=64)
        assert out.size == (64, 64) and out.mode == "RGB"


def test_canonical_makes_a_webp_and_a_jpeg_of_one_picture_nearly_identical():
    picture = _gradient(800, 600)
    webp = np.asarray(image_canonical(image_decode(_encoded(picture, "WEBP", quality=95)), size=64), dtype=float)
    jpeg = np.asarray(image_canonical(image_decode(_encoded(picture, "JPEG", quality=95)), size=64), dtype=float)
    assert np.abs(webp - jpeg).mean() < 2.0


def test_images_to_tensor_returns_a_normalised_batch():
    batch = images_to_tensor([_gradient(100, 80), _gradient(300, 200)], size=32)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    assert -3 < float(batch.min()) < 0 < float(batch.max()) < 3
