import csv
import shutil
from pathlib import Path

import pytest

from detection.core.data import folder_scan, split_load, split_make, split_prepare, split_save
from tests.detection.synthetic import folder_synthetic


def _sides(split: dict, key) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = {}
    for name, samples in split["splits"].items():
        for sample in samples:
            sides.setdefault(key(sample), set()).add(name)
    return sides


@pytest.fixture(scope="module")
def multi_source_folder(tmp_path_factory) -> Path:
    """A real-only folder with four sources, laid out like real-diverse (source column in groups.csv)."""
    root = tmp_path_factory.mktemp("diverse") / "diverse"
    base = folder_synthetic(tmp_path_factory.mktemp("tmp") / "base", per_class_scenery=12, size=24)
    rows = []
    for i, path in enumerate(sorted((base / "real").glob("*/*.png"))):
        source = f"src{i % 4}"
        rel = f"real/{source}/{i:03d}.png"
        (root / "real" / source).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / rel)
        rows.append({"path": rel, "label": "real", "scenery": "other", "group": f"{source}:{i // 3}", "source": source})
    with (root / "groups.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "scenery", "group", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_split_keeps_every_group_on_one_side(synthetic_folder, multi_source_folder):
    split = split_make(folders=[synthetic_folder, multi_source_folder], seed=3)
    assert all(len(sides) == 1 for sides in _sides(split, lambda s: s.group).values())


def test_split_holds_whole_sources_out_of_training(synthetic_folder, multi_source_folder):
    split = split_make(folders=[synthetic_folder, multi_source_folder], seed=0, holdout_sources=["src1"])
    assert {s.source for s in split["splits"]["heldout"]} == {"src1"}
    assert _sides(split, lambda s: s.source)["src1"] == {"heldout"}
    auto = split_make(folders=[synthetic_folder, multi_source_folder], seed=0)
    held = set(auto["holdout_sources"])
    assert held and "synthetic" not in held
    assert not held & {s.source for name in ("train", "val", "test") for s in auto["splits"][name]}


def test_split_is_stratified_by_class_and_scenery(synthetic_split):
    for name in ("train", "val", "test"):
        strata = {(s.label, s.scenery) for s in synthetic_split["splits"][name]}
        assert strata == {(0, "forest"), (0, "sea"), (1, "forest"), (1, "sea")}
    sizes = {name: len(samples) for name, samples in synthetic_split["splits"].items()}
    assert sizes["train"] > sizes["val"] > 0 and sizes["test"] > 0


def test_split_is_the_same_for_the_same_seed_and_survives_a_round_trip(synthetic_folder, tmp_path):
    first = split_make(folders=[synthetic_folder], seed=7)
    assert first["splits"] == split_make(folders=[synthetic_folder], seed=7)["splits"]
    split_save(first, path=tmp_path / "split.json")
    loaded = split_load(path=tmp_path / "split.json", folders=[synthetic_folder])
    assert loaded["splits"] == first["splits"]
    assert loaded["fingerprint"] == first["fingerprint"]


def test_folder_without_groups_csv_is_grouped_by_perceptual_hash(tmp_path):
    root = folder_synthetic(tmp_path / "nocsv", per_class_scenery=3, size=32, groups_csv=False)
    original = root / "real" / "forest" / "000.png"
    # A brightened copy is a near-duplicate and must share the original's group.
    from PIL import Image, ImageEnhance

    ImageEnhance.Brightness(Image.open(original)).enhance(1.05).save(root / "real" / "forest" / "dup.png")
    groups = {s.path.name: s.group for s in folder_scan(folder=root) if s.path.parent.name == "forest" and s.label == 0}
    assert groups["dup.png"] == groups["000.png"]


def test_a_new_bundle_can_train_on_exactly_another_bundles_split(synthetic_folder, tmp_path):
    first = split_prepare(directory=tmp_path / "first", folders=[synthetic_folder], seed=3)
    second = split_prepare(directory=tmp_path / "second", split_file=tmp_path / "first" / "split.json")
    assert second["splits"] == first["splits"]
    assert (tmp_path / "second" / "split.json").read_text() == (tmp_path / "first" / "split.json").read_text()
    with pytest.raises(ValueError, match="data folders or a split file"):
        split_prepare(directory=tmp_path / "third")


def test_a_small_early_stopping_share_still_holds_each_class_in_its_share():
    import random

    from detection.core.data import Sample, groups_assign

    # 40 groups of AI images and 4 of genuine ones: a share of groups drawn at random would often miss the
    # genuine class altogether.
    samples = [Sample(Path(f"ai{g}_{i}.jpg"), 1, "sea", f"ai{g}", "gen") for g in range(40) for i in range(2)]
    samples += [Sample(Path(f"real{g}_{i}.jpg"), 0, "sea", f"real{g}", "cam") for g in range(4) for i in range(2)]
    for seed in range(10):
        part = groups_assign(samples, fractions=(0.85, 0.15), rng=random.Random(seed))
        early_stopping = [sample for sample in samples if part[sample.group] == 1]
        assert len({sample.group for sample in early_stopping if sample.label == 1}) == 6  # 15 % of 40 groups
        assert len({sample.group for sample in early_stopping if sample.label == 0}) == 1  # of 4
