import io
import random

import numpy as np
import pytest
import torch
from PIL import Image

from detection.core.preprocess import image_canonical, image_decode, images_to_tensor
from detection.core.transforms import arrays_augmented, units_augmented


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


def test_a_geometric_augmentation_crops_and_mirrors_but_keeps_every_colour():
    # Left half red, right half blue: a crop or mirror moves the edge, a photometric edit would change the colours.
    base = np.zeros((36, 36, 3), dtype=np.uint8)
    base[:, :18] = (200, 30, 30)
    base[:, 18:] = (30, 30, 200)
    rng = random.Random(0)
    views = arrays_augmented(np.stack([base] * 12), list(range(12)), augment="geometric", size=32, rng=rng)
    assert {view.shape for view in views} == {(32, 32, 3)}
    for view in views:
        corners = view[[2, 2, -3, -3], [2, -3, 2, -3]].astype(int)
        assert all(
            np.abs(corner - (200, 30, 30)).max() < 12 or np.abs(corner - (30, 30, 200)).max() < 12 for corner in corners
        )
    assert {bool(view[16, 2, 0] > 100) for view in views} == {True, False}  # mirrored in some views, not in others


def test_no_augmentation_gives_the_canonical_images_as_they_are():
    arrays = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    views = arrays_augmented(arrays, [2, 0], augment="none", size=32, rng=random.Random(0))
    assert np.array_equal(views[0], arrays[2]) and np.array_equal(views[1], arrays[0])


def test_the_images_of_a_pair_share_one_crop_and_degradation_while_images_alone_draw_their_own():
    base = np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    arrays = [base, base.copy(), base.copy()]
    pair_first, pair_second, alone = units_augmented(
        arrays, [[0, 1], [2]], augment="native", size=48, rng=random.Random(0)
    )
    assert np.array_equal(pair_first, pair_second), "the same crop and the same edits on both sides"
    assert not np.array_equal(pair_first, alone)
    first, second = units_augmented(arrays, [[0], [1]], augment="native", size=48, rng=random.Random(0))
    assert not np.array_equal(first, second)


def test_images_alone_are_augmented_exactly_as_one_batch_of_them_was():
    arrays = np.random.default_rng(2).integers(0, 255, (4, 40, 40, 3), dtype=np.uint8)
    alone = units_augmented(arrays, [[3], [1], [0]], augment="reshoot", size=32, rng=random.Random(5))
    batch = arrays_augmented(arrays, [3, 1, 0], augment="reshoot", size=32, rng=random.Random(5))
    assert all(np.array_equal(a, b) for a, b in zip(alone, batch, strict=True))
