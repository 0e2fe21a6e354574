"""The typed model card: every shipped card.json survives the round trip unchanged."""

import dataclasses
import json
from pathlib import Path

import pytest

from detection.core.card import ModelCard, Thresholds

SHIPPED = Path(__file__).resolve().parents[2] / "detection" / "weights"
CARD_FILES = sorted(SHIPPED.glob("*/card.json"))


def test_there_are_shipped_cards_to_check():
    assert len(CARD_FILES) >= 6


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.parent.name)
def test_every_shipped_card_round_trips_exactly(path):
    data = json.loads(path.read_text())
    card = ModelCard.from_dict(data)
    assert card.to_dict() == data
    assert json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n" == path.read_text()


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.parent.name)
def test_shipped_cards_read_as_typed_fields_with_nothing_left_untyped_but_extras(path):
    data = json.loads(path.read_text())
    card = ModelCard.from_dict(data)
    assert (card.name, card.arch, card.version) == (data["name"], data["arch"], data["version"])
    assert isinstance(card.thresholds, Thresholds) and card.thresholds.low <= card.thresholds.high
    assert isinstance(card.image_size, int)
    assert card.extra == {}  # every key the shipped cards use has a field of its own


def test_the_clip_blocks_and_keras_cards_expose_their_own_keys():
    blocks = ModelCard.from_dict(json.loads((SHIPPED / "clip_blocks" / "card.json").read_text()))
    assert blocks.crops == 1 and blocks.probe["blocks"] and blocks.stability and blocks.leave_source_out
    assert blocks.thresholds.chosen_on.startswith("out-of-source") and blocks.thresholds.false_flag_confidence == 0.0
    keras = ModelCard.from_dict(json.loads((SHIPPED / "mobilenet_v2_keras" / "card.json").read_text()))
    assert keras.keras["input_scale"] == "imagenet" and keras.gradcam_default_layer in keras.gradcam_layers


def test_unknown_keys_and_nulls_are_kept_so_a_rewritten_card_loses_nothing():
    data = {
        "name": "m",
        "arch": "mobilenet_v2",
        "version": "1",
        "image_size": 64,
        "thresholds": {"low": 0.2, "high": 0.8, "someday": [1, 2]},
        "imported": {"sha256": "ab"},
        "split_file": None,
    }
    card = ModelCard.from_dict(data)
    assert card.extra == {"imported": {"sha256": "ab"}, "split_file": None} and card.split_file is None
    assert card.thresholds.extra == {"someday": [1, 2]}
    assert card.to_dict() == data


def test_a_card_is_a_value_untouched_by_changes_to_its_source_or_its_dict():
    data = {
        "name": "m",
        "arch": "resnet50",
        "version": "1",
        "image_size": 64,
        "thresholds": {"low": 0.2, "high": 0.8},
        "training": {"seconds": 1},
    }
    card = ModelCard.from_dict(data)
    data["training"]["seconds"] = 2
    card.to_dict()["training"]["seconds"] = 3
    assert card.training == {"seconds": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.version = "2"


def test_a_card_without_a_required_key_is_refused_by_name():
    with pytest.raises(ValueError, match="lacks version, thresholds"):
        ModelCard.from_dict({"name": "m", "arch": "resnet50", "image_size": 64})
