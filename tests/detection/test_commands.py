"""The management commands are thin wrappers; these run them without a database."""

import io
import json

import numpy as np
import pytest

django_settings = pytest.importorskip("django.conf").settings


@pytest.fixture
def command_settings(tiny_card, weights_dir):
    if not django_settings.configured:
        pytest.skip("Django settings are not configured (run with the project's pytest config)")
    previous = django_settings.DETECTOR_WEIGHTS_DIR
    django_settings.DETECTOR_WEIGHTS_DIR = weights_dir
    yield tiny_card.name
    django_settings.DETECTOR_WEIGHTS_DIR = previous


def test_detect_command_prints_an_error_line_for_a_corrupt_file_and_goes_on(
    command_settings, synthetic_split, tmp_path
):
    from django.core.management import call_command

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "ok.png").write_bytes(synthetic_split["splits"]["test"][0].path.read_bytes())
    out = io.StringIO()
    call_command("detect", str(tmp_path), model=command_settings, json=True, stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["path"].rsplit("/", 1)[-1] for line in lines] == ["broken.jpg", "ok.png"]
    assert "error" in lines[0]
    assert lines[1]["model"] == command_settings and 0.0 <= lines[1]["ai_probability"] <= 1.0


def test_detect_command_fails_clearly_for_an_untrained_model(command_settings):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no trained weights for ghost"):
        call_command("detect", "x.jpg", model="ghost", json=True)


def test_calibrate_command_rewrites_the_card_thresholds_from_the_validation_split(
    command_settings, weights_dir, synthetic_split, tmp_path
):
    import shutil

    from django.core.management import call_command
    from PIL import Image

    from detection.core.bundle import card_load
    from detection.core.data import split_save
    from detection.core.files import heldout_scores_load
    from detection.core.inference import detector_load

    shutil.copytree(weights_dir / command_settings, tmp_path / "cal")
    (tmp_path / "cal" / "heldout_scores.json").unlink()
    split_save(synthetic_split, path=tmp_path / "cal" / "split.json")
    django_settings.DETECTOR_WEIGHTS_DIR = tmp_path
    out = io.StringIO()
    call_command("calibrate_detector", model="cal", false_flag=0.5, confidence=0.0, stdout=out)
    card = card_load(directory=tmp_path / "cal")
    val_reals = [s for s in synthetic_split["splits"]["val"] if s.label == 0]
    detector = detector_load(weights_dir=tmp_path, name="cal")
    probabilities = detector.predict([Image.open(sample.path) for sample in val_reals])
    flagged = sum(p >= card.thresholds.high for p in probabilities)
    assert flagged <= len(val_reals) // 2
    assert card.thresholds.false_flag_target == 0.5 and card.calibrated
    assert card.metrics["val"]["fp"] == flagged
    assert "thresholds" in out.getvalue()
    # The scores the thresholds were chosen on stay with the bundle, for recalibration on decisions.
    heldout = heldout_scores_load(directory=tmp_path / "cal")
    assert heldout["version"] == card.version
    assert sorted(row["score"] for row in heldout["samples"] if row["label"] == 0) == pytest.approx(
        sorted(probabilities), abs=1e-3
    )

    # The same few reals cannot back a 2 % bound at 95 %: the card says so and nothing is flagged.
    call_command("calibrate_detector", model="cal", stdout=io.StringIO())
    card = card_load(directory=tmp_path / "cal")
    assert card.thresholds.false_flag_bound_met is False
    assert card.metrics["val"]["fp"] == 0


def test_compare_command_ranks_models_on_one_split_and_refuses_two(
    command_settings, weights_dir, synthetic_split, synthetic_folder, tmp_path
):
    import shutil

    from django.core.management import CommandError, call_command

    from detection.core.data import split_make, split_save

    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        shutil.copytree(weights_dir / command_settings, tmp_path / name)
        split_save(split_make(folders=[synthetic_folder], seed=seed), path=tmp_path / name / "split.json")
    django_settings.DETECTOR_WEIGHTS_DIR = tmp_path
    out = io.StringIO()
    call_command("compare_detectors", models=["a", "b"], recall=[0.5, 1.0], stdout=out)
    header, line_a, line_b = out.getvalue().splitlines()
    assert header == "false flags at recall 0.5 / 1" and line_a.startswith("a: ")
    assert line_a.split(": ")[1] == line_b.split(": ")[1]  # the same weights on the same images
    with pytest.raises(CommandError, match="c was tested on another split than a"):
        call_command("compare_detectors", models=["a", "c"], stdout=io.StringIO())


@pytest.mark.parametrize(
    ("ablation", "message"),
    [
        ("--pairs-ablation", "give --aligned FOLDER"),
        ("--pairs-decoders=taesd", "give --pairs-ablation"),
        ("--reshot-ablation", "give --reshot-copies N"),
        ("--fuse-with=scores.csv", "give --cnn ARCH"),
        ("--cnn-native-crops=3", "give --cnn ARCH"),
        ("--hidden-l2=0.01", "give --hidden-rows WIDTH"),
    ],
)
def test_crossval_command_refuses_an_ablation_without_what_it_leaves_out_before_computing_any_feature(
    tmp_path, ablation, message
):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("crossval_detector", ablation, "--data", str(tmp_path / "absent"), "--cache-dir", str(tmp_path))
    assert not any(tmp_path.iterdir()), "no feature cache was started"


def _crossval_cnn(folder, tmp_path, *extra: str) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "crossval_detector",
        "--cnn",
        "mobilenet_v2",
        "--no-imagenet-start",
        "--cnn-epochs",
        "1",
        "--cnn-image-size",
        "32",
        "--k",
        "3",
        "--data",
        str(folder),
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
        stdout=out,
    )
    return out.getvalue()


def test_a_cnn_crossval_trains_one_model_per_fold_on_the_other_folds_and_fuses_with_another_detector(tmp_path):
    import csv

    from detection.core.bundle import card_load
    from detection.core.crossval import Protocol
    from detection.core.data import folder_scan
    from tests.detection.synthetic import folder_of_sources

    folder = folder_of_sources(tmp_path / "tiny")
    _crossval_cnn(folder, tmp_path, "--scores", str(tmp_path / "cnn.csv"))
    protocol = Protocol(folder_scan(folder=folder), k=3)
    for fold in range(3):
        training = card_load(directory=tmp_path / "cache" / "crossval_mobilenet_v2" / f"fold{fold}").training
        # Early stopping's share of groups included: all it saw is outside its fold.
        assert training["train_images"] + training["val_images"] == len(protocol.train_for([fold]))
    with (tmp_path / "cnn.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(protocol.samples)
    assert all(0.0 <= float(row["score"]) <= 1.0 for row in rows)
    # Fused with a detector that separates the classes perfectly, every AI image gains on every genuine one,
    # so the ranking can only improve, and does.
    for row in rows:
        row["score"] = 0.9 if row["label"] == "1" else 0.1
    with (tmp_path / "perfect.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = _crossval_cnn(folder, tmp_path, "--fuse-with", str(tmp_path / "perfect.csv")).splitlines()
    alone, other, fused, stacked = (line for line in lines if "ROC AUC" in line)
    assert other.startswith("perfect.csv | ROC AUC 1.000 | recall at 1% / 3% false flags 100.0% / 100.0%")
    assert fused.startswith("mobilenet_v2 + perfect.csv")
    # Stacked on the other folds' scores, each fold leans on the perfect detector.
    shares = stacked.split("perfect.csv's weight per fold ")[1].split(")")[0].split()
    assert len(shares) == 3 and all(float(share) >= 0.5 for share in shares)

    def auc(line: str) -> float:
        return float(line.split("ROC AUC ")[1].split(" ")[0])

    assert auc(fused) > auc(alone)


def test_two_finished_runs_scores_are_fused_without_training_and_only_on_the_same_deal(tmp_path):
    from django.core.management import CommandError, call_command

    from detection.core.crossval import Protocol
    from detection.core.data import folder_scan
    from detection.core.study import scores_csv_write
    from tests.detection.synthetic import folder_of_sources

    folder = folder_of_sources(tmp_path / "tiny")
    protocol = Protocol(folder_scan(folder=folder), k=3)
    rng = np.random.default_rng(0)
    nowhere = np.full(len(protocol.labels), np.nan)
    noisy = np.clip(protocol.labels * 0.3 + rng.uniform(0, 0.7, len(protocol.labels)), 0.01, 0.99)
    perfect = protocol.labels * 0.8 + 0.1
    scores_csv_write(tmp_path / "noisy.csv", protocol, {"scores": noisy, "high": nowhere})
    scores_csv_write(tmp_path / "perfect.csv", protocol, {"scores": perfect, "high": nowhere})
    fuse = ["--fuse", str(tmp_path / "noisy.csv"), str(tmp_path / "perfect.csv"), "--data", str(folder)]
    out = io.StringIO()
    call_command("crossval_detector", *fuse, "--k", "3", "--cache-dir", str(tmp_path / "cache"), stdout=out)
    noisy_row, perfect_row, mixed, stacked = out.getvalue().splitlines()
    assert noisy_row.startswith("noisy.csv | ROC AUC") and perfect_row.startswith("perfect.csv | ROC AUC 1.000")
    assert mixed.startswith("noisy.csv + perfect.csv | ROC AUC")
    assert stacked.startswith("noisy.csv + perfect.csv, stacked (perfect.csv's weight per fold ")
    assert not (tmp_path / "cache").exists(), "nothing was trained nor cached"
    with pytest.raises(CommandError, match="other folds"):
        call_command("crossval_detector", *fuse, "--k", "3", "--seed", "1", "--cache-dir", str(tmp_path / "cache"))
    with pytest.raises(CommandError, match="drop --cnn"):
        call_command("crossval_detector", *fuse, "--cnn", "mobilenet_v2", "--cache-dir", str(tmp_path / "cache"))


def test_a_cnn_crossval_on_native_crops_trains_on_working_images_and_scores_the_mean_logit_of_the_crops(tmp_path):
    import csv

    from detection.core.bundle import card_load
    from detection.core.cnn_study import native_crops, working_images
    from detection.core.data import folder_scan
    from detection.core.inference import detector_load
    from tests.detection.synthetic import folder_of_sources

    folder = folder_of_sources(tmp_path / "tiny")
    out = _crossval_cnn(folder, tmp_path, "--cnn-native-crops", "2", "--scores", str(tmp_path / "cnn.csv"))
    assert "mobilenet_v2 on 2 native crops | ROC AUC" in out
    bundles = tmp_path / "cache" / "crossval_mobilenet_v2"
    assert card_load(directory=bundles / "fold0").training["augment"] == "native"
    with (tmp_path / "cnn.csv").open(newline="") as handle:
        row = next(row for row in csv.DictReader(handle) if row["fold"] == "0")
    sample = next(sample for sample in folder_scan(folder=folder) if str(sample.path) == row["path"])
    # The synthetic folder's images are 96 px, both classes: that is their working image.
    crops = native_crops(working_images([sample], shorts=[96], size=32)[0], size=32, count=2)
    probabilities = np.asarray(detector_load(weights_dir=bundles, name="fold0").predict_arrays(list(crops)))
    logit = np.mean(np.log(probabilities / (1 - probabilities)))
    assert float(row["score"]) == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5)


def test_a_cnn_crossval_trains_on_content_aligned_pairs_per_ablation_row_but_never_stops_early_on_them_nor_scores_them(
    tmp_path,
):
    import csv
    import pathlib
    from collections import Counter

    from detection.core.bundle import card_load
    from detection.core.crossval import Protocol
    from detection.core.study import samples_scan
    from tests.detection.synthetic import aligned_of_sources, folder_of_sources

    folder = folder_of_sources(tmp_path / "tiny")
    aligned = aligned_of_sources(tmp_path / "aligned", photos=folder)
    scores = tmp_path / "cnn.csv"
    out = _crossval_cnn(
        folder,
        tmp_path,
        "--cnn-native-crops",
        "2",
        "--aligned",
        str(aligned),
        "--pairs-ablation",
        "--pairs-rows",
        "without",
        "alone",
        "--scores",
        str(scores),
    )
    without, decoder, paired = (line for line in out.splitlines() if "ROC AUC" in line)
    assert without.startswith("mobilenet_v2 on 2 native crops, without pairs | ROC AUC")
    # The synthetic folder has one decoder's pairs: its row trains on all of them.
    assert decoder.startswith("mobilenet_v2 on 2 native crops, taesd pairs only | ROC AUC")
    assert paired.startswith("mobilenet_v2 on 2 native crops + 18 pairs | ROC AUC")
    with scores.open(newline="") as handle:
        scored = [pathlib.Path(row["path"]) for row in csv.DictReader(handle)]
    assert len(scored) == 36 and not any(path.is_relative_to(aligned) for path in scored)

    samples, _, pairs = samples_scan(
        folders=[folder], train_only_folders=[aligned], per_unit=500, aligned_decoders=None
    )
    protocol = Protocol(samples, k=3, train_only=pairs)
    bundles = tmp_path / "cache" / "crossval_mobilenet_v2"
    trained = []
    for fold in range(3):
        train = protocol.train_for([fold])
        sides = int(np.asarray(pairs)[train].sum())
        trained_pairs = Counter(protocol.groups[i] for i in train if pairs[i])
        assert set(trained_pairs.values()) <= {2}, "a photo and its round trip train together or not at all"
        assert sides < 36, "the pairs of a held-out collection or decoder are held out with it"
        alone, decoder, beside = (
            card_load(directory=bundles / f"fold{n}").training for n in (fold, fold + 3, fold + 6)
        )
        assert alone["train_images"] + alone["val_images"] == len(train) - sides
        assert beside["train_images"] == alone["train_images"] + sides
        assert (beside["paired_images"], alone["paired_images"]) == (sides, 0)
        assert beside["val_images"] == alone["val_images"], "the same early-stopping share, no pair in it"
        assert decoder["paired_images"] == beside["paired_images"]
        trained.append(sides)
    assert max(trained) > 0


def test_a_cnn_crossval_refuses_scores_of_another_deal_before_training(tmp_path):
    import csv

    from django.core.management import CommandError

    from tests.detection.synthetic import folder_of_sources

    folder = folder_of_sources(tmp_path / "tiny")
    with (tmp_path / "other.csv").open("w", newline="") as handle:
        rows = [["path", "label", "unit", "fold", "score"], ["/elsewhere.jpg", 1, "ai:x", 0, 0.5]]
        csv.writer(handle).writerows(rows)
    with pytest.raises(CommandError, match="other images or other folds"):
        _crossval_cnn(folder, tmp_path, "--fuse-with", str(tmp_path / "other.csv"))
    assert not (tmp_path / "cache" / "crossval_mobilenet_v2").exists()
