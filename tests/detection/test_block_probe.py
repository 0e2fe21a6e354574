"""The block probe: weighted logistic regression over views, pooled per image."""

from __future__ import annotations

import numpy as np

from detection.core.block_probe import ProbeConfig, probe_train, row_weights
from detection.core.features import FEATURE_DIM, WIDTH


def _features(rng: np.random.Generator, labels: np.ndarray, *, views: int = 2) -> np.ndarray:
    features = rng.normal(0, 1, (len(labels), views, FEATURE_DIM)).astype(np.float16)
    # The class shows in block 3's CLS token only, and only in the crop (view 1).
    features[:, 1, 3 * WIDTH : 3 * WIDTH + 8] += (labels[:, None] * 3.0).astype(np.float16)
    return features


def test_the_probe_finds_the_block_and_the_view_that_carry_the_class():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 60)
    features = _features(rng, labels)
    test_labels = np.array([0, 1] * 20)
    test = _features(rng, test_labels)
    sources = ["a"] * len(labels)
    on_crops = probe_train(features, labels, sources, config=ProbeConfig(blocks=(3,), views="crops"))
    on_global = probe_train(features, labels, sources, config=ProbeConfig(blocks=(3,), views="global"))
    accuracy = np.mean((on_crops.scores(test) >= 0.5) == test_labels)
    assert accuracy >= 0.95
    assert np.mean((on_global.scores(test) >= 0.5) == test_labels) < 0.8


def test_source_balance_gives_each_collection_of_a_class_the_same_weight():
    labels = np.array([0] * 90 + [0] * 10 + [1] * 20)
    sources = ["big"] * 90 + ["small"] * 10 + ["gen"] * 20
    weights = row_weights(labels, sources, balance="source")
    assert np.isclose(weights[:90].sum(), 0.5) and np.isclose(weights[90:100].sum(), 0.5)
    assert np.isclose(weights[100:].sum(), 1.0)
    plain = row_weights(labels, sources, balance="class")
    assert np.isclose(plain[:90].sum(), 0.9)


def test_with_scales_the_global_and_crop_views_are_picked_at_every_scale():
    two_scales = {"scales": (160,)}
    assert ProbeConfig(views="global", **two_scales).view_indices(4) == [0, 2]
    assert ProbeConfig(views="crops", **two_scales).view_indices(4) == [1, 3]
    assert ProbeConfig(views="all", **two_scales).view_indices(4) == [0, 1, 2, 3]
    assert ProbeConfig(views="crops").view_indices(3) == [1, 2]
