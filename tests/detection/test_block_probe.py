"""The block probe: weighted logistic regression over views, pooled per image."""

from __future__ import annotations

import numpy as np
import pytest

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


def _two_collections(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """AI images show in block 3's and block 5's CLS tokens; of two genuine collections, a big one shows in
    neither and a small one in block 5's, as the AI images do."""
    labels = np.array([0] * 90 + [0] * 10 + [1] * 40)
    sources = ["big"] * 90 + ["small"] * 10 + ["gen"] * 40
    features = rng.normal(0, 1, (len(labels), 1, FEATURE_DIM)).astype(np.float32)
    features[labels == 1, 0, 3 * WIDTH : 3 * WIDTH + 8] += 1.5
    features[(labels == 1) | (np.array(sources) == "small"), 0, 5 * WIDTH : 5 * WIDTH + 8] += 1.5
    return features.astype(np.float16), labels, sources


def _worst_genuine_loss(head, features: np.ndarray, sources: list[str]) -> float:
    """The highest mean training loss of a genuine collection (every image here but "gen" is genuine)."""
    losses = -np.log(1 - np.clip(head.scores(features), 0, 1 - 1e-7))
    return max(losses[np.array(sources) == name].mean() for name in ("big", "small"))


def test_the_worst_source_objective_lowers_the_worst_collections_loss_and_is_the_sources_mean_when_warm():
    features, labels, sources = _two_collections(np.random.default_rng(0))
    base = {"blocks": (3, 5), "patches": False, "views": "global", "weight_decay": 1.0}
    mean = probe_train(features, labels, sources, config=ProbeConfig(**base, balance="source"))
    worst = probe_train(features, labels, sources, config=ProbeConfig(**base, balance="worst", temperature=0.05))
    warm = probe_train(features, labels, sources, config=ProbeConfig(**base, balance="worst", temperature=100.0))
    assert _worst_genuine_loss(worst, features, sources) < _worst_genuine_loss(mean, features, sources) - 0.03
    assert np.abs(warm.scores(features) - mean.scores(features)).max() < 0.01


def _crossed(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """AI exactly when two features of block 3's CLS token have the same sign, beside eight of noise: no line
    separates the classes."""
    features = np.zeros((count, 1, FEATURE_DIM), dtype=np.float32)
    signs = rng.choice([-1.0, 1.0], size=(count, 2))
    features[:, 0, 3 * WIDTH : 3 * WIDTH + 2] = 2.0 * signs + rng.normal(0, 0.3, (count, 2))
    features[:, 0, 3 * WIDTH + 2 : 3 * WIDTH + 10] = rng.normal(0, 1, (count, 8))
    return features.astype(np.float16), (signs[:, 0] == signs[:, 1]).astype(int)


def test_a_hidden_layer_learns_a_class_that_no_linear_probe_can_separate():
    rng = np.random.default_rng(0)
    features, labels = _crossed(rng, 300)
    test, test_labels = _crossed(rng, 200)
    sources = ["a"] * len(labels)
    base = {"blocks": (3,), "patches": False, "views": "global", "weight_decay": 1e-3}
    linear = probe_train(features, labels, sources, config=ProbeConfig(**base))
    hidden = probe_train(features, labels, sources, config=ProbeConfig(**base, hidden=16))
    assert np.mean((hidden.scores(test) >= 0.5) == test_labels) >= 0.9
    assert np.mean((linear.scores(test) >= 0.5) == test_labels) < 0.7


def test_a_hidden_layer_refuses_the_worst_source_objective_and_a_bundle(tmp_path):
    from detection.core.block_detector import block_bundle_save

    features, labels = _crossed(np.random.default_rng(0), 20)
    with pytest.raises(ValueError, match="mini-batches"):
        probe_train(features, labels, ["a"] * 20, config=ProbeConfig(blocks=(3,), hidden=4, balance="worst"))
    head = probe_train(features, labels, ["a"] * 20, config=ProbeConfig(blocks=(3,), hidden=4))
    with pytest.raises(ValueError, match="not a bundle"):
        block_bundle_save(directory=tmp_path / "bundle", head=head, card=None)
    assert not (tmp_path / "bundle").exists()
