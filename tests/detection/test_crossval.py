"""The leave-source-out protocol on made-up samples: held-out sources stay out of training and calibration."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from detection.core.crossval import (
    Protocol,
    crossval_report,
    crossval_run,
    fusion_stacked,
    generator_family,
    outer_scores,
    ranking_report,
    samples_limit,
    unit_of,
)
from detection.core.data import Sample
from detection.core.metrics import recall_at_false_flag, roc_auc, scores_fused
from detection.core.study import scores_csv_read, scores_csv_write


def _samples() -> list[Sample]:
    samples = []
    for collection in ("phones", "museum", "streets", "bsds", "kodak", "travel"):
        for i in range(12):
            samples.append(
                Sample(
                    path=Path(f"/{collection}/{i}.jpg"),
                    label=0,
                    scenery="other",
                    group=f"{collection}:{i}",
                    source=collection,
                )
            )
    for generator in (
        "FLUX.1-dev (via fal API)",
        "FLUX.1-schnell",
        "DALL-E 2",
        "Midjourney v5",
        "StyleGAN",
        "Kolors (IP-Adapter)",
    ):
        for i in range(12):
            samples.append(
                Sample(
                    path=Path(f"/ai/{generator}/{i}.jpg"),
                    label=1,
                    scenery="other",
                    group=f"{generator}:{i}",
                    source="mixed",
                    generator=generator,
                )
            )
    # A genuine photo and its autoencoder round trip share a group: the pair must move together.
    samples.append(
        Sample(
            path=Path("/tae/0.jpg"),
            label=1,
            scenery="other",
            group="phones:0",
            source="tae_taesd",
            generator="tae_taesd",
        )
    )
    return samples


def test_variants_of_one_generator_are_held_out_as_one_family():
    assert generator_family("FLUX.1-dev (via fal API)") == generator_family("FLUX.1-schnell") == "flux"
    assert generator_family("SDXL-Turbo") == generator_family("Stable Diffusion 3") == "stable-diffusion"
    assert unit_of(_samples()[-1]) == "ai:tae_taesd"


def test_a_held_out_source_never_reaches_training_or_calibration():
    protocol = Protocol(_samples(), k=3)
    seen: list[np.ndarray] = []

    def fit(train: np.ndarray):
        seen.append(train)
        return lambda indices: protocol.labels[indices] * 0.8 + 0.1

    result = crossval_run(protocol, fit=fit, false_flag=0.05, confidence=0.0)
    # k outer fits, each after k - 1 inner fits.
    assert len(seen) == 3 * 3
    tae_pair = {i for i, sample in enumerate(protocol.samples) if sample.group == "phones:0"}
    for fold in range(3):
        held = set(np.flatnonzero(protocol.folds == fold).tolist())
        outer = [train for train in seen if not held & set(train.tolist())]
        assert outer, f"no fit kept fold {fold} out"
    for train in seen:
        members = set(train.tolist())
        assert not tae_pair & members or tae_pair <= members, "a photo and its round trip were split"
    assert not np.isnan(result["scores"]).any()


def _guarded_fit(protocol: Protocol, fits: list[set[int]], spread: float = 0.0):
    """A fit that records what each model trained on and fails a test that scores one of those images."""

    def fit(train: np.ndarray):
        members = set(train.tolist())
        fits.append(members)

        def score(indices: np.ndarray) -> np.ndarray:
            assert not members & set(indices.tolist()), "scored an image its model trained on"
            return protocol.labels[indices] * 0.8 + 0.1 + np.linspace(0, spread, len(indices))

        return score

    return fit


def test_each_fold_is_scored_and_thresholded_by_models_that_never_saw_it():
    protocol = Protocol(_samples(), k=3)
    fits: list[set[int]] = []
    crossval_run(protocol, fit=_guarded_fit(protocol, fits), false_flag=0.05, confidence=0.0)
    assert len(fits) == 9


def test_the_report_gives_false_flags_per_collection_and_recall_per_generator_with_the_worst():
    protocol = Protocol(_samples(), k=3)
    rng = np.random.default_rng(0)
    # Perfectly separable except one collection that looks AI and one generator that looks real.
    base = protocol.labels * 0.98 + rng.uniform(0, 0.01, len(protocol.labels))
    units = np.array(protocol.units)
    base[units == "real:museum"] = 0.97
    base[units == "ai:stylegan"] = 0.02

    def fit(train: np.ndarray):
        return lambda indices: base[indices]

    report = crossval_report(protocol, crossval_run(protocol, fit=fit, false_flag=0.05, confidence=0.0))
    assert report["false_flags"]["real:museum"]["rate"] == 1.0
    assert report["false_flags"]["real:phones"]["rate"] == 0.0
    assert report["false_flags_worst"] == 1.0
    assert report["recall"]["ai:stylegan"]["rate"] == 0.0
    assert report["recall"]["ai:flux"]["rate"] == 1.0
    assert report["recall_worst"] == 0.0
    assert report["recall_by_generator"]["FLUX.1-schnell"]["n"] == 12
    assert 0.5 < report["roc_auc"] < 1.0


@pytest.mark.parametrize("k", [3, 4])
def test_every_unit_gets_one_fold_and_folds_are_balanced_by_class(k):
    protocol = Protocol(_samples(), k=k)
    for label in (0, 1):
        counts = np.bincount(protocol.folds[protocol.labels == label], minlength=k)
        assert counts.max() - counts.min() <= 13
    for unit in set(protocol.units):
        assert len(set(protocol.folds[np.array(protocol.units) == unit].tolist())) == 1


def test_recall_at_a_false_flag_rate_uses_the_threshold_that_flags_that_share_of_reals():
    labels = [0] * 100 + [1] * 10
    scores = [*np.linspace(0, 0.5, 100), 0.3, 0.49, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99]
    # 3 % of 100 reals: the three highest (0.490..0.5) may be flagged, so the AI image at 0.49 is caught too.
    assert recall_at_false_flag(labels=labels, scores=scores, rate=0.03) == 0.9
    assert recall_at_false_flag(labels=labels, scores=scores, rate=0.0) == 0.8


def test_a_limit_per_source_keeps_whole_groups_and_every_source():
    samples = _samples()
    kept = samples_limit(samples, per_unit=5)
    units = [unit_of(sample) for sample in kept]
    assert set(units) == {unit_of(sample) for sample in samples}
    assert max(units.count(unit) for unit in set(units)) <= 13
    assert samples_limit(samples, per_unit=None) == samples


def test_training_only_images_train_with_their_units_but_never_count_in_the_figures(tmp_path):
    samples = _samples()
    train_only = [sample.source == "tae_taesd" for sample in samples]
    protocol = Protocol(samples, k=3, train_only=train_only)
    trained_on: set[int] = set()
    scored: set[int] = set()

    def fit(train: np.ndarray):
        trained_on.update(train.tolist())

        def score(indices: np.ndarray) -> np.ndarray:
            scored.update(indices.tolist())
            return protocol.labels[indices] * 0.98

        return score

    result = crossval_run(protocol, fit=fit, false_flag=0.05, confidence=0.0)
    report = crossval_report(protocol, result)
    tae = train_only.index(True)
    assert tae in trained_on
    # No model, inner or outer, spends time scoring it.
    assert tae not in scored
    assert np.isnan(result["scores"][tae])
    assert not np.isnan(np.delete(result["scores"], tae)).any()
    assert "ai:tae_taesd" not in report["recall"]
    assert report["recall_by_generator"].keys().isdisjoint({"tae_taesd"})
    # Nor in the scores a peer benchmark compares on: every counted image, with the fold that held it out.
    scores_csv_write(tmp_path / "scores.csv", protocol, result)
    with (tmp_path / "scores.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    counted = np.flatnonzero(~np.array(train_only))
    assert [row["path"] for row in rows] == [str(samples[i].path) for i in counted]
    assert {int(row["fold"]) for row in rows} == {0, 1, 2}
    assert [float(row["threshold"]) for row in rows] == pytest.approx(result["high"][counted].tolist(), abs=1e-6)


def test_outer_scores_come_from_one_model_per_fold_that_never_saw_that_fold():
    protocol = Protocol(_samples(), k=3)
    fits: list[set[int]] = []
    scores = outer_scores(protocol, fit=_guarded_fit(protocol, fits, spread=0.9))
    assert len(fits) == 3  # no inner folds
    assert not np.isnan(scores).any()
    report = ranking_report(protocol, scores)
    assert report["roc_auc"] == roc_auc(labels=protocol.labels, scores=scores)
    assert report["recall_at_false_flags"]["0.03"] == recall_at_false_flag(
        labels=protocol.labels, scores=scores, rate=0.03
    )
    held = protocol.folds == 1
    assert report["folds"][1]["roc_auc"] == roc_auc(labels=protocol.labels[held], scores=scores[held])


def test_fusing_standardises_each_detectors_logits_so_none_weighs_more_for_its_scale():
    rng = np.random.default_rng(0)
    first, second = rng.uniform(0.05, 0.95, 50), rng.uniform(0.05, 0.95, 50)
    logits = np.log(second / (1 - second))
    sharper = 1 / (1 + np.exp(-3 * logits))  # the same ranking, three times as confident
    assert scores_fused(first, second) == pytest.approx(scores_fused(first, sharper))
    assert np.argsort(scores_fused(first, first)).tolist() == np.argsort(first).tolist()
    assert not np.allclose(scores_fused(first, second), scores_fused(first, first))


def test_a_stacked_fusion_leans_on_the_detector_that_ranks_well_and_never_reads_its_own_folds_labels():
    protocol = Protocol(_samples(), k=3)
    rng = np.random.default_rng(0)
    good = np.clip(protocol.labels * 0.5 + 0.25 + rng.normal(0, 0.1, len(protocol.labels)), 0.01, 0.99)
    noise = rng.uniform(0.05, 0.95, len(protocol.labels))
    stacked, weights = fusion_stacked(protocol, good, noise)
    assert set(weights) == {0, 1, 2}
    assert all(weight < 0.5 for weight in weights.values())
    assert roc_auc(labels=protocol.labels, scores=stacked) > roc_auc(
        labels=protocol.labels, scores=scores_fused(good, noise)
    )
    # Fold 0's weight comes from folds 1 and 2 only: shuffling fold 0's labels leaves it as it was.
    held = np.flatnonzero(protocol.folds == 0)
    protocol.labels[held] = rng.permutation(protocol.labels[held])
    assert fusion_stacked(protocol, good, noise)[1][0] == weights[0]
    # A training-only image (NaN) stays out.
    good[0] = np.nan
    assert np.isnan(fusion_stacked(protocol, good, noise)[0][0])


def test_another_detectors_scores_are_read_back_only_for_the_same_images_and_folds(tmp_path):
    protocol = Protocol(_samples(), k=3)
    scores = np.linspace(0, 1, len(protocol.samples))
    scores_csv_write(tmp_path / "ours.csv", protocol, {"scores": scores, "high": np.full(len(scores), 0.5)})
    assert scores_csv_read(tmp_path / "ours.csv", protocol) == pytest.approx(scores, abs=1e-6)
    with pytest.raises(ValueError, match="other folds"):
        scores_csv_read(tmp_path / "ours.csv", Protocol(_samples(), k=3, seed=1))
    with pytest.raises(ValueError, match="other images"):
        scores_csv_read(tmp_path / "ours.csv", Protocol(_samples()[:-3], k=3))


def test_native_crops_are_cut_from_the_working_image_at_its_own_scale_along_its_long_side():
    from detection.core.cnn_study import native_crops

    image = np.arange(40 * 100 * 3, dtype=np.uint32).reshape(40, 100, 3).astype(np.uint8)
    crops = native_crops(image, size=32, count=3)
    assert crops.shape == (3, 32, 32, 3)
    for crop, left in zip(crops, (0, 34, 68), strict=True):
        assert np.array_equal(crop, image[4:36, left : left + 32])


def test_a_random_native_crop_shows_a_part_of_the_image_at_its_scale_not_the_whole_shrunk():
    import random

    from detection.core.transforms import image_native_crop

    # A ramp from black to white across four crops' width: a thumbnail would show all of it, a native crop a
    # quarter, whatever the degradation does to colour, sharpness and codec.
    ramp = np.broadcast_to(np.linspace(0, 255, 128)[None, :, None], (48, 128, 3)).astype(np.uint8)
    for seed in range(20):
        crop = image_native_crop(ramp, size=32, rng=random.Random(seed))
        assert crop.shape == (32, 32, 3)
        columns = crop.astype(float).mean(axis=(0, 2))
        assert columns.max() - columns.min() < 100


def test_working_images_bring_both_classes_of_a_folder_to_one_short_side(tmp_path):
    from PIL import Image

    from detection.core.cnn_study import working_images
    from detection.core.features import folder_short_cap

    # The seed set's trap in small: genuine photos 48 px, AI images twice as large.
    samples = []
    for label, side in ((0, 48), (1, 96)):
        for i in range(3):
            path = tmp_path / f"{label}_{i}.png"
            Image.new("RGB", (side * 3 // 2, side), (i * 40, 90, 200)).save(path)
            samples.append(Sample(path, label, "sea", f"{label}{i}", "set"))
    cap = folder_short_cap(samples, ceiling=320)
    images = working_images(samples, shorts=[cap] * len(samples), size=32)
    assert cap == 48
    assert {image.shape for image in images} == {(48, 72, 3)}
