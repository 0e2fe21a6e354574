"""The scenery suggestion head on made-up embeddings: one cluster per scenery, other photos anywhere."""

import numpy as np

from detection.core.scenery import (
    OTHER,
    SCENERIES,
    accuracy_per_scenery,
    head_load,
    head_save,
    labels_index,
    scenery_fit,
)

DIM = 16
CLASSES = [*SCENERIES, OTHER]


def _cluster_centres(rng) -> np.ndarray:
    centres = rng.normal(size=(len(SCENERIES), DIM))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _embeddings(centres, names, rng, *, spread=0.15) -> np.ndarray:
    # Other photos have no cluster of their own: any direction.
    points = np.stack([centres[CLASSES.index(name)] if name in SCENERIES else rng.normal(size=DIM) for name in names])
    points += rng.normal(scale=spread, size=(len(names), DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _fitted(rng):
    centres = _cluster_centres(rng)
    names = [name for name in CLASSES for _ in range(30)]
    train_x, val_x = _embeddings(centres, names, rng), _embeddings(centres, names, rng)
    labels = labels_index(names, classes=CLASSES)
    head, _ = scenery_fit(train_x=train_x, train_y=labels, val_x=val_x, val_y=labels, classes=CLASSES)
    return head, centres


def test_the_head_learns_which_cluster_is_which_scenery():
    rng = np.random.default_rng(0)
    head, centres = _fitted(rng)
    names = [name for name in CLASSES for _ in range(20)]
    measured = accuracy_per_scenery(head, _embeddings(centres, names, rng), names)
    assert {name for name in SCENERIES if measured["per_scenery"][name]["accuracy"] < 0.9} == set()
    assert [name for name, _ in head.suggest(centres)] == list(SCENERIES)


def test_an_embedding_between_two_sceneries_is_suggested_as_other():
    rng = np.random.default_rng(1)
    head, centres = _fitted(rng)
    middle = centres[SCENERIES.index("forest")] + centres[SCENERIES.index("sea")]
    middle /= np.linalg.norm(middle)
    ((name, probability),) = head.suggest(middle[None])
    assert head.threshold > 0
    assert name == OTHER, probability


def test_a_saved_head_suggests_what_it_suggested_before_saving(tmp_path):
    rng = np.random.default_rng(2)
    head, centres = _fitted(rng)
    head_save(directory=tmp_path, head=head, card={"version": "1"})
    loaded, card = head_load(directory=tmp_path)
    assert card["classes"] == CLASSES
    assert [name for name, _ in loaded.suggest(centres)] == [name for name, _ in head.suggest(centres)]
