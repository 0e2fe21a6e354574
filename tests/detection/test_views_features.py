"""The multi-view input and the per-block CLIP features the generalising detector is built on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detection.core.features import BLOCKS, FEATURE_DIM, WIDTH, BlockEncoder, feature_slices
from detection.core.views import VIEW_SIZE, crop_boxes, image_working, views_make, views_pyramid

ENCODER = Path(__file__).resolve().parents[2] / "detection/weights/clip_probe_aug/clip_encoder.float.onnx"


def _photo(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack(
        [np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), np.full((height, width), 90.0)],
        axis=2,
    )
    return Image.fromarray(rgb.astype(np.uint8))


def test_a_large_upload_becomes_a_working_image_with_a_short_side_of_320():
    working = image_working(_photo(4000, 3000))
    assert working.size == (427, 320)
    assert image_working(_photo(200, 150)).size == (200, 150), "small images are never enlarged"


def test_the_views_are_the_whole_frame_then_crops_at_working_scale_across_the_long_side():
    working = _photo(640, 320)
    views = views_make(working, crops=3)
    assert views.shape == (4, VIEW_SIZE, VIEW_SIZE, 3)
    # The global view spans the whole width: its red ramp runs from the left edge to the right edge.
    assert views[0, 100, 0, 0] < 10 and views[0, 100, -1, 0] > 245
    # Crops are not rescaled: the first starts at the left edge, the last ends at the right one.
    assert crop_boxes(640, 320, count=3) == [(0, 48, 224, 272), (208, 48, 432, 272), (416, 48, 640, 272)]
    assert np.array_equal(views[1], np.asarray(working.crop((0, 48, 224, 272))))


def test_an_image_smaller_than_a_view_is_enlarged_for_its_crop():
    views = views_make(_photo(150, 150), crops=1)
    assert views.shape == (2, VIEW_SIZE, VIEW_SIZE, 3)


def test_the_pyramid_adds_the_views_of_the_working_image_shrunk_again_scale_by_scale():
    working = image_working(_photo(640, 480))
    views = views_pyramid(working, crops=1, scales=(160,))
    assert views.shape == (4, VIEW_SIZE, VIEW_SIZE, 3)
    assert np.array_equal(views[:2], views_make(working, crops=1))
    assert np.array_equal(views[2:], views_make(image_working(working, short=160), crops=1))
    assert image_working(working, short=160).size == (214, 160)
    small = image_working(_photo(150, 200))
    assert np.array_equal(views_pyramid(small, crops=1, scales=(160,))[2:], views_make(small, crops=1)), (
        "a working image no larger than the scale is neither enlarged nor re-encoded"
    )


def test_feature_slices_pick_the_chosen_blocks_columns():
    columns = feature_slices(blocks=[0, 11], cls=True, patches=False)
    assert len(columns) == 2 * WIDTH and columns[0] == 0 and columns[-1] == BLOCKS * WIDTH - 1
    assert len(feature_slices(blocks=[3], embed=True)) == 2 * WIDTH + (FEATURE_DIM - 2 * BLOCKS * WIDTH)


@pytest.fixture(scope="module")
def block_encoder() -> BlockEncoder:
    return BlockEncoder(path=ENCODER, threads=2)


def test_the_encoder_graph_exposes_every_blocks_tokens_and_the_last_block_feeds_the_embedding(block_encoder):
    views = views_make(image_working(_photo(400, 300)), crops=1)
    features = block_encoder.features(views)
    assert features.shape == (2, FEATURE_DIM)
    embeds = features[:, 2 * BLOCKS * WIDTH :]
    assert np.allclose(np.linalg.norm(embeds, axis=1), 1.0, atol=1e-4)
    cls = features[:, : BLOCKS * WIDTH].reshape(2, BLOCKS, WIDTH)
    # Each block changes the CLS token: twelve distinct blocks, not one output repeated.
    assert all(not np.allclose(cls[0, b], cls[0, b + 1]) for b in range(BLOCKS - 1))
    # The global view and the crop are different inputs with different features.
    assert not np.allclose(features[0], features[1])
