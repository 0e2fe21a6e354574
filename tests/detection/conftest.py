"""Session fixtures: one synthetic data folder and one tiny model trained on it (a few seconds on CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detection.core.card import ModelCard
from detection.core.data import split_make
from detection.core.inference import Detector, detector_load
from detection.core.selftest import golden_write
from detection.core.train import train_run
from tests.detection.synthetic import folder_synthetic

IMAGE_SIZE = 48


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    return folder_synthetic(tmp_path_factory.mktemp("data") / "synthetic", per_class_scenery=14, size=IMAGE_SIZE)


@pytest.fixture(scope="session")
def synthetic_split(synthetic_folder: Path) -> dict:
    return split_make(folders=[synthetic_folder], seed=0)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def tiny_card(synthetic_split: dict, weights_dir: Path) -> ModelCard:
    torch.set_num_threads(2)
    splits = synthetic_split["splits"]
    # BatchNorm running statistics need many steps on so few images, hence many short epochs.
    card = train_run(
        arch="mobilenet_v2",
        train=splits["train"],
        val=splits["val"],
        out_dir=weights_dir,
        name="tiny",
        epochs=30,
        image_size=IMAGE_SIZE,
        batch_size=8,
        seed=0,
        augment="none",
        patience=30,
        lr=3e-3,
        progress=False,
    )
    golden_write(directory=weights_dir / card.name, detector=detector_load(weights_dir=weights_dir, name=card.name))
    return card


def one_epoch_train(split: dict, *, out_dir: Path, name: str, **options) -> ModelCard:
    """A one-epoch MobileNetV2 run on the synthetic split: what a test of a training option needs."""
    return train_run(
        arch="mobilenet_v2",
        train=split["splits"]["train"],
        val=split["splits"]["val"],
        out_dir=out_dir,
        name=name,
        epochs=1,
        image_size=IMAGE_SIZE,
        batch_size=8,
        progress=False,
        **options,
    )


@pytest.fixture(scope="session")
def tiny_detector(tiny_card: dict, weights_dir: Path) -> Detector:
    return detector_load(weights_dir=weights_dir, name=tiny_card.name)
