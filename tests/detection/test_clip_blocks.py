"""The CLIP-blocks detector end to end on a tiny made-up data set: protocol, thresholds, bundle, serving."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detection.core import study
from detection.core.block_detector import BlockDetector, image_reencode
from detection.core.crossval import Protocol
from detection.core.data import Sample
from detection.core.features import FEATURE_DIM
from detection.core.loading import detector_open, golden_make
from detection.core.selftest import golden_check
from detection.core.study import (
    PRESETS,
    StudyData,
    clip_blocks_train,
    pairs_variants,
    seed_test_exclude,
    study_data,
    study_run,
)
from detection.core.transforms import image_reshot
from detection.core.verdicts import verdict_stable
from detection.core.views import views_pyramid
from tests.detection.synthetic import folder_of_sources, image_synthetic

ENCODER = Path(__file__).resolve().parents[2] / "detection/weights/clip_probe_aug/clip_encoder.float.onnx"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("blocks")
    folder = folder_of_sources(root / "tiny")
    data = study_data(folders=[folder], encoder_path=ENCODER, cache_dir=root / "cache", crops=1, threads=2)
    weights = root / "weights"
    out = clip_blocks_train(
        data,
        preset="+source-balance",
        out_dir=weights,
        name="tiny_blocks",
        encoder_path=ENCODER,
        crops=1,
        k=3,
        false_flag=0.1,
        minimum_n=5,
    )
    golden_make(weights_dir=weights, name="tiny_blocks")
    return {**out, "weights": weights, "folder": folder, "data": data}


def test_the_card_quotes_leave_source_out_figures_and_out_of_source_thresholds(trained):
    card = json.loads((trained["weights"] / "tiny_blocks" / "card.json").read_text())
    lso = card["leave_source_out"]
    assert set(lso["false_flags"]) == {"real:phones", "real:museum", "real:streets"}
    assert set(lso["recall"]) == {"ai:gena", "ai:genb", "ai:genc"}
    assert card["thresholds"]["low"] < card["thresholds"]["high"]
    assert card["thresholds"]["chosen_on"].startswith("out-of-source")
    # The checkerboard "generators" are easy: out of source they are still caught.
    assert lso["recall_mean"] >= 0.75
    heldout = json.loads((trained["weights"] / "tiny_blocks" / "heldout_scores.json").read_text())
    assert len(heldout["samples"]) == 36


def test_the_bundle_serves_through_detector_open_and_passes_its_self_test(trained):
    detector = detector_open(weights_dir=trained["weights"], name="tiny_blocks")
    assert isinstance(detector, BlockDetector)
    golden_check(directory=trained["weights"] / "tiny_blocks", detector=detector)
    rng = np.random.default_rng(5)
    ai, real = image_synthetic(rng, ai=True, size=96), image_synthetic(rng, ai=False, size=96)
    p_ai, p_real = detector.predict([ai, real])
    assert p_ai > p_real
    probability, variant = detector.predict_checked(ai)
    assert probability == pytest.approx(p_ai, abs=1e-5) and 0.0 <= variant <= 1.0
    heat = detector.heatmap(ai)
    assert heat.shape == detector.canonical(ai).shape[:2] and heat.min() >= 0.0 and heat.max() <= 1.0


@pytest.fixture(scope="module")
def scaled(trained, tmp_path_factory) -> dict:
    """A head trained across two scales; the tiny images are 96 px, shrunk again to 64 px here (160 shipped)."""
    root = tmp_path_factory.mktemp("scaled")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "+scales", dataclasses.replace(PRESETS["+scales"], scales=(64,)))
        with pytest.raises(ValueError, match="short side 64"):
            trained["data"].views_for(PRESETS["+scales"])
        data = study_data(
            folders=[trained["folder"]], encoder_path=ENCODER, cache_dir=root / "cache", crops=1, scales=(64,)
        )
        clip_blocks_train(data, preset="+scales", out_dir=root, name="scaled", encoder_path=ENCODER, crops=1, k=3)
    return {"data": data, "detector": BlockDetector(directory=root / "scaled"), "card": root / "scaled" / "card.json"}


def test_a_head_trained_across_scales_is_served_the_very_views_it_was_trained_on(scaled):
    data, detector = scaled["data"], scaled["detector"]
    assert data.rescaled[64].shape == data.features.shape
    assert json.loads(scaled["card"].read_text())["probe"]["scales"] == [64]
    served = detector._features([detector.canonical(Image.open(data.samples[0].path))])[0]
    assert served.shape == (4, data.features.shape[2])
    assert np.allclose(served.astype(np.float16), data.views_for(detector.head.config)[0], atol=2e-2)
    assert not np.allclose(served[0], served[2], atol=2e-2), "the second scale's views are their own"


def test_an_upload_already_as_small_as_a_scale_has_each_of_its_views_encoded_once(scaled, monkeypatch):
    detector = scaled["detector"]
    encoded = []
    encode = detector.encoder.features
    monkeypatch.setattr(detector.encoder, "features", lambda views: encoded.append(len(views)) or encode(views))
    small = detector.canonical(image_synthetic(np.random.default_rng(3), ai=True, size=64))
    large = detector.canonical(image_synthetic(np.random.default_rng(4), ai=True, size=96))
    features = detector._features([small, large])
    # A square image's crop is its whole frame; the 64 px image's second scale repeats its first.
    assert encoded == [1 + 2]
    assert np.allclose(features[0], features[0, :1]) and not np.allclose(features[1, 0], features[1, 2])
    alone = [encode(views_pyramid(Image.fromarray(array), crops=1, scales=(64,))) for array in (small, large)]
    assert np.allclose(features, np.stack(alone), atol=1e-3)


def test_a_drifted_head_is_refused_by_its_self_test(trained, tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    from detection.core.selftest import SelfTestFailed

    copy = tmp_path / "tiny_blocks"
    shutil.copytree(trained["weights"] / "tiny_blocks", copy)
    tensors = load_file(str(copy / "model.safetensors"))
    tensors["bias"] = tensors["bias"] + np.float16(3.0)
    save_file(tensors, str(copy / "model.safetensors"))
    with pytest.raises(SelfTestFailed):
        golden_check(directory=copy, detector=BlockDetector(directory=copy))


def test_a_verdict_that_a_mild_re_encoding_flips_is_uncertain_never_ai():
    assert verdict_stable(0.9, 0.95, low=0.2, high=0.8) == "ai"
    assert verdict_stable(0.9, 0.5, low=0.2, high=0.8) == "uncertain"
    assert verdict_stable(0.1, 0.85, low=0.2, high=0.8) == "uncertain"
    assert verdict_stable(0.1, None, low=0.2, high=0.8) == "real"


def test_the_stability_variant_is_smaller_and_re_encoded():
    image = image_synthetic(np.random.default_rng(1), ai=True, size=200)
    variant = image_reencode(image)
    assert variant.size == (150, 150)
    assert not np.array_equal(np.asarray(variant), np.asarray(image.resize((150, 150))))


def test_training_against_the_seed_test_split_leaves_out_its_photos_and_their_aligned_round_trips():
    def sample(path: str, group: str, label: int = 0) -> Sample:
        return Sample(path=Path(path), label=label, scenery="sea", group=group, source="s")

    test_photo = sample("landscapes/real/sea/1.jpg", "landscapes:7")
    kept_photo = sample("landscapes/real/sea/2.jpg", "landscapes:8")
    samples = [
        test_photo,
        kept_photo,
        sample("aligned/real/s/1.jpg", "aligned:landscapes:7"),  # the test photo's pair: both sides go
        sample("aligned/ai_generated/tae_taesd/1.jpg", "aligned:landscapes:7", label=1),
        sample("aligned/ai_generated/tae_taesd/2.jpg", "aligned:landscapes:8", label=1),
        sample("other/real/x/3.jpg", "other:landscapes:7"),  # a counted image whose group only looks alike
    ]
    data = StudyData(
        samples=samples,
        features=np.arange(len(samples), dtype=np.float16)[:, None, None],
        caps={},
        train_only=np.array([False, False, True, True, True, False]),
    )
    kept = seed_test_exclude(data, {"splits": {"test": [test_photo]}})
    assert [str(s.path) for s in kept.samples] == [
        "landscapes/real/sea/2.jpg",
        "aligned/ai_generated/tae_taesd/2.jpg",
        "other/real/x/3.jpg",
    ]
    assert kept.features[:, 0, 0].tolist() == [1, 4, 5]
    assert kept.train_only.tolist() == [False, True, False]


def _with_pairs() -> StudyData:
    """Three genuine collections and three generators of 4 images each, and two decoders' content-aligned
    pairs (a photo's copy and its round trip, one group), 3 per decoder, training only."""
    samples, train_only = [], []
    for label, sources in ((0, ("phones", "museum", "streets")), (1, ("gena", "genb", "genc"))):
        for source in sources:
            samples += [
                Sample(Path(f"{source}/{i}.jpg"), label, "other", f"{source}{i}", source, source) for i in range(4)
            ]
            train_only += [False] * 4
    for decoder in ("taesd", "taef1"):
        for i in range(3):
            group = f"aligned:{decoder}{i}"
            samples += [
                Sample(Path(f"aligned/real/{decoder}{i}.jpg"), 0, "other", group, "phones"),
                Sample(Path(f"aligned/tae_{decoder}/{i}.jpg"), 1, "other", group, f"tae_{decoder}", f"tae_{decoder}"),
            ]
            train_only += [True, True]
    labels = np.array([sample.label for sample in samples])
    features = np.random.default_rng(0).normal(size=(len(samples), 2, FEATURE_DIM)) + labels[:, None, None]
    return StudyData(samples=samples, features=features.astype(np.float16), caps={}, train_only=np.array(train_only))


def test_the_pairs_ablation_trains_without_pairs_then_each_decoders_pairs_alone_then_all_but_one(monkeypatch):
    data = _with_pairs()
    variants = pairs_variants(samples=data.samples, pairs=data.pairs)
    assert list(variants) == [
        "without pairs",
        "taef1 pairs only",
        "taesd pairs only",
        "all pairs but taef1's",
        "all pairs but taesd's",
    ]
    assert variants["without pairs"].tolist() == (~data.train_only).tolist()
    taesd = [str(data.samples[i].path) for i in np.flatnonzero(variants["taesd pairs only"] & data.train_only)]
    assert sorted(taesd) == sorted(
        [f"aligned/real/taesd{i}.jpg" for i in range(3)] + [f"aligned/tae_taesd/{i}.jpg" for i in range(3)]
    )
    assert variants["all pairs but taef1's"].tolist() == variants["taesd pairs only"].tolist()
    assert list(pairs_variants(samples=data.samples, pairs=data.pairs, rows=["all-but"])) == [
        "all pairs but taef1's",
        "all pairs but taesd's",
    ]

    only_taesd = pairs_variants(samples=data.samples, pairs=data.pairs, rows=["alone", "all-but"], decoders=["taesd"])
    assert list(only_taesd) == ["taesd pairs only", "all pairs but taesd's"]
    assert only_taesd["all pairs but taesd's"].tolist() == variants["all pairs but taesd's"].tolist()
    with pytest.raises(ValueError, match="no pairs of taesdxl; the pairs are of taef1, taesd"):
        pairs_variants(samples=data.samples, pairs=data.pairs, decoders=["taesdxl"])

    # The units each row's probes trained on (a row's fits all run before it is yielded).
    trained_units: list[set[str]] = [set()]
    train = study.probe_train

    def probe_train_spy(features, labels, units, *, config):
        trained_units[-1].update(units)
        return train(features, labels, units, config=config)

    monkeypatch.setattr(study, "probe_train", probe_train_spy)
    rows = {}
    runs = study_run(data, presets=["+l2x100"], k=3, false_flag=0.3, pairs_ablation=("without", "alone", "all-but"))
    for name, result in runs:
        rows[name] = trained_units[-1]
        trained_units.append(set())
        assert set(result["report"]["recall"]) == {"ai:gena", "ai:genb", "ai:genc"}, "pairs never count"
    decoders = {name: {unit for unit in units if unit.startswith("ai:tae_")} for name, units in rows.items()}
    assert decoders == {
        "+l2x100": {"ai:tae_taesd", "ai:tae_taef1"},
        "+l2x100, without pairs": set(),
        "+l2x100, taef1 pairs only": {"ai:tae_taef1"},
        "+l2x100, taesd pairs only": {"ai:tae_taesd"},
        "+l2x100, all pairs but taef1's": {"ai:tae_taesd"},
        "+l2x100, all pairs but taesd's": {"ai:tae_taef1"},
    }


def _rows_spied(monkeypatch, **options) -> dict[str, tuple[set, dict]]:
    """Each row of `study_run` on `_with_pairs()` (+l2x100, k 3): the (balance, temperature, hidden width, L2
    penalty) its probes trained with, and its result."""
    train = study.probe_train
    configs: set = set()

    def probe_train_spy(features, labels, units, *, config):
        configs.add((config.balance, config.temperature, config.hidden, config.weight_decay))
        return train(features, labels, units, config=config)

    monkeypatch.setattr(study, "probe_train", probe_train_spy)
    rows = {}
    for name, result in study_run(_with_pairs(), presets=["+l2x100"], k=3, false_flag=0.3, **options):
        rows[name] = (set(configs), result["result"])
        configs.clear()
    return rows


def test_the_l2_rows_train_the_last_preset_again_with_each_penalty_on_the_same_folds(monkeypatch):
    rows = _rows_spied(monkeypatch, penalties=(1.0, 100.0))
    assert [(name, {penalty for *_, penalty in used}) for name, (used, _) in rows.items()] == [
        ("+l2x100", {0.1}),
        ("+l2x100, L2 1", {1.0}),
        ("+l2x100, L2 100", {100.0}),
    ]
    # A heavier penalty pulls every out-of-source score towards the middle (training-only images have none).
    spread = [np.nanmean(np.abs(result["scores"] - 0.5)) for _, result in rows.values()]
    assert spread[0] > spread[1] > spread[2]


def test_the_worst_source_rows_train_the_last_preset_again_at_each_temperature_on_the_same_folds(monkeypatch):
    rows = _rows_spied(monkeypatch, temperatures=(0.05, 1.0))
    assert {name: used for name, (used, _) in rows.items()} == {
        "+l2x100": {("source", 0.1, 0, 0.1)},
        "+l2x100, worst source at 0.05": {("worst", 0.05, 0, 0.1)},
        "+l2x100, worst source at 1": {("worst", 1.0, 0, 0.1)},
    }
    assert list(rows) == ["+l2x100", "+l2x100, worst source at 0.05", "+l2x100, worst source at 1"]


def test_the_hidden_rows_train_the_last_preset_again_per_width_and_penalty_on_the_same_folds(monkeypatch):
    rows = _rows_spied(monkeypatch, hidden_widths=(4, 8), hidden_penalties=(0.01, 1.0))
    assert {name: used for name, (used, _) in rows.items()} == {
        "+l2x100": {("source", 0.1, 0, 0.1)},
        "+l2x100, hidden 4, L2 0.01": {("source", 0.1, 4, 0.01)},
        "+l2x100, hidden 4, L2 1": {("source", 0.1, 4, 1.0)},
        "+l2x100, hidden 8, L2 0.01": {("source", 0.1, 8, 0.01)},
        "+l2x100, hidden 8, L2 1": {("source", 0.1, 8, 1.0)},
    }
    assert list(_rows_spied(monkeypatch, hidden_widths=(4,))) == ["+l2x100", "+l2x100, hidden 4, L2 0.1"]


def test_training_on_some_decoders_pairs_never_encodes_the_others(tmp_path):
    """Both sides of a pair go with its decoder: the copy of the photo as well as the round trip."""
    rng = np.random.default_rng(3)
    rows = []
    for decoder in ("taesd", "taef1"):
        for i in range(2):
            for label, folder in (("real", "real/phones"), ("ai_generated", f"ai_generated/tae_{decoder}")):
                path = Path(folder) / f"{decoder}{i}.png"
                (tmp_path / "aligned" / path).parent.mkdir(parents=True, exist_ok=True)
                image_synthetic(rng, ai=label != "real", size=64).save(tmp_path / "aligned" / path)
                source = "phones" if label == "real" else f"tae_{decoder}"
                rows.append([path, label, "other", f"other:{decoder}{i}", source, "" if label == "real" else source])
    with (tmp_path / "aligned" / "groups.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label", "scenery", "group", "source", "generator"], *rows])

    data = study_data(
        folders=[],
        train_only_folders=[tmp_path / "aligned"],
        aligned_decoders={"taesd"},
        encoder_path=ENCODER,
        cache_dir=tmp_path / "cache",
        threads=2,
    )
    assert sorted(str(s.path.relative_to(tmp_path / "aligned")) for s in data.samples) == [
        "ai_generated/tae_taesd/taesd0.png",
        "ai_generated/tae_taesd/taesd1.png",
        "real/phones/taesd0.png",
        "real/phones/taesd1.png",
    ]
    assert data.train_only.all() and data.features.shape[0] == 4
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 4, "the FLUX.1 pairs were never encoded"
    with pytest.raises(ValueError, match="no aligned folder"):
        study_data(folders=[], aligned_decoders={"taesd"}, encoder_path=ENCODER, cache_dir=tmp_path / "cache")


def test_a_re_shot_copy_is_cropped_at_its_own_scale_and_the_same_for_the_same_seed():
    image = image_synthetic(np.random.default_rng(1), ai=False, size=96).resize((150, 100))
    copy = image_reshot(image, rng=random.Random("photo:1"))
    width, height = copy.size
    assert width <= 150 and height <= 100 and width * height >= 0.44 * 150 * 100, "cropped, never enlarged"
    assert width / height == pytest.approx(1.5, abs=0.05)
    assert copy.tobytes() == image_reshot(image, rng=random.Random("photo:1")).tobytes()
    assert copy.tobytes() != image_reshot(image, rng=random.Random("photo:2")).tobytes()


def test_re_shot_copies_train_beside_their_images_are_held_out_with_them_and_never_count(trained, monkeypatch):
    originals, cache = trained["data"], trained["folder"].parent / "cache"
    n = len(originals.samples)
    before = set(cache.rglob("*.npy"))
    data = study_data(folders=[trained["folder"]], encoder_path=ENCODER, cache_dir=cache, crops=1, reshot_copies=1)
    assert data.samples == originals.samples * 2 and data.reshot.tolist() == [0] * n + [1] * n
    assert data.train_only.tolist() == [False] * n + [True] * n and not data.pairs.any()
    assert np.array_equal(data.features[:n], originals.features)
    assert len(set(cache.rglob("*.npy")) - before) == n, "each copy encoded once, and cached"
    assert (np.abs(data.features[n:].astype(np.float32) - data.features[:n]).mean(axis=(1, 2)) > 0).all()

    protocol = Protocol(data.samples, k=3, train_only=data.train_only)
    assert protocol.counted.tolist() == [True] * n + [False] * n
    for fold in range(3):
        train = set(protocol.train_for([fold]).tolist())
        assert all((i in train) == (i + n in train) for i in range(n)), "a copy is held out with its image"

    sizes: list[list[int]] = [[]]
    train = study.probe_train

    def probe_train_spy(features, labels, units, *, config):
        sizes[-1].append(len(labels))
        return train(features, labels, units, config=config)

    monkeypatch.setattr(study, "probe_train", probe_train_spy)
    rows = []
    for name, result in study_run(data, presets=["+l2x100"], k=3, false_flag=0.3, reshot_ablation=True):
        rows.append(name)
        sizes.append([])
        assert sum(result["report"]["false_flags"][unit]["n"] for unit in result["report"]["false_flags"]) == n // 2
    assert rows == ["+l2x100", "+l2x100, without re-shot copies"]
    assert sizes[0] == [2 * size for size in sizes[1]], "each fit trains on its images' copies too, or on none"
    with pytest.raises(ValueError, match="re-shot copies"):
        next(study_run(originals, presets=["+l2x100"], k=3, reshot_ablation=True))
