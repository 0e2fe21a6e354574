import dataclasses
import hashlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from detection.core.bundle import bundle_load
from detection.core.inference import NoTrainedWeights, detector_load
from detection.core.metrics import confusion_counts, precision_recall_f1
from detection.core.nets import ARCHITECTURES, gradcam_layers, net_build, net_finetune_set
from detection.core.registry import architecture_get
from detection.core.train import train_run
from tests.detection.conftest import one_epoch_train


def test_tiny_model_learns_the_synthetic_artefact_to_f1_above_0_9(tiny_detector, synthetic_split):
    test = synthetic_split["splits"]["test"]
    probs = tiny_detector.predict([Image.open(s.path) for s in test])
    labels = [s.label for s in test]
    counts = confusion_counts(labels=labels, flagged=[p >= 0.5 for p in probs])
    assert precision_recall_f1(counts)["f1"] > 0.9


def test_bundle_holds_fp16_weights_and_a_complete_card(tiny_card, weights_dir):
    directory = weights_dir / tiny_card.name
    card = json.loads((directory / "card.json").read_text())
    for key in ("name", "arch", "version", "image_size", "preprocessing", "thresholds", "metrics", "training"):
        assert key in card
    assert 0.0 <= card["thresholds"]["low"] < card["thresholds"]["high"] <= 1.0
    from safetensors.torch import load_file

    state = load_file(str(directory / "model.safetensors"))
    assert all(t.dtype.is_floating_point is False or str(t.dtype) == "torch.float16" for t in state.values())
    model, loaded = bundle_load(directory=directory)
    assert loaded.to_dict() == card and not model.training


def test_training_writes_the_validation_scores_its_thresholds_came_from(tiny_card, weights_dir, synthetic_split):
    heldout = json.loads((weights_dir / tiny_card.name / "heldout_scores.json").read_text())
    val = synthetic_split["splits"]["val"]
    assert heldout["version"] == tiny_card.version
    assert [(row["label"], row["source"]) for row in heldout["samples"]] == [(s.label, s.source) for s in val]
    flagged_reals = sum(row["score"] >= tiny_card.thresholds.high for row in heldout["samples"] if row["label"] == 0)
    assert flagged_reals == tiny_card.metrics["val"]["fp"]


def test_missing_weights_raise_no_trained_weights_with_the_exact_message(tmp_path):
    with pytest.raises(NoTrainedWeights) as caught:
        detector_load(weights_dir=tmp_path, name="ghost")
    assert str(caught.value) == "no trained weights for ghost"


def test_verdict_follows_the_card_thresholds(tiny_detector):
    low, high = tiny_detector.card.thresholds.low, tiny_detector.card.thresholds.high
    assert tiny_detector.verdict(high) == "ai"
    assert tiny_detector.verdict(min(1.0, high + 0.01)) == "ai"
    assert tiny_detector.verdict(low - 1e-9 if low > 0 else -1.0) == "real"
    if low < high:
        assert tiny_detector.verdict(low) == "uncertain"


def test_gradcam_map_has_the_image_shape_and_is_normalised_by_its_99th_percentile(tiny_detector, synthetic_split):
    ai = next(s for s in synthetic_split["splits"]["test"] if s.label == 1)
    heat = tiny_detector.heatmap(Image.open(ai.path))
    size = tiny_detector.image_size
    assert heat.shape == (size, size) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    # 99th-percentile scaling: about 1% of the map saturates at 1, the rest spreads below it.
    assert 0.005 <= np.mean(heat >= 1.0) <= 0.2
    assert np.isclose(np.percentile(heat, 99), 1.0, atol=1e-3)


def test_overlay_is_a_png_and_reuses_one_cam_per_layer(tiny_detector, synthetic_split):
    image = Image.open(synthetic_split["splits"]["test"][0].path)
    png = tiny_detector.overlay(image)
    assert Image.open(io.BytesIO(png)).size == (tiny_detector.image_size,) * 2
    cam = tiny_detector._cams[architecture_get("mobilenet_v2").heatmap_default_layer]
    tiny_detector.overlay(image)
    tiny_detector.overlay(image, layer="features.18")
    assert (
        tiny_detector._cams[architecture_get("mobilenet_v2").heatmap_default_layer] is cam
        and len(tiny_detector._cams) == 2
    )
    with pytest.raises(ValueError, match="unknown Grad-CAM layer"):
        tiny_detector.overlay(image, layer="nope")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_builds_with_a_two_class_head_and_gradcam_layers(arch):
    import torch

    model = net_build(arch).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
    layers = gradcam_layers(model, arch)
    assert architecture_get(arch).heatmap_default_layer in layers and len(layers) == 3


def test_finetune_head_freezes_everything_but_the_classifier():
    model = net_build("mobilenet_v2")
    net_finetune_set(model, "mobilenet_v2", mode="head")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("classifier") for name in trainable)
    net_finetune_set(model, "mobilenet_v2", mode="last-block")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any(name.startswith("features.18") for name in trainable)
    assert not any(name.startswith("features.17") for name in trainable)


def test_training_can_start_from_a_local_checkpoint(tiny_card, weights_dir, synthetic_split, tmp_path):
    card = one_epoch_train(
        synthetic_split, out_dir=tmp_path, name="ft", init=weights_dir / tiny_card.name, finetune="head"
    )
    assert card.training["init_skipped"] == [] and card.training["finetune"] == "head"
    init_file = weights_dir / tiny_card.name / "model.safetensors"
    assert card.training["init_sha256"] == hashlib.sha256(init_file.read_bytes()).hexdigest()
    # Head-only: the frozen backbone keeps the checkpoint's BatchNorm statistics, not the new data's.
    before, after = load_file(str(init_file)), load_file(str(tmp_path / "ft" / "model.safetensors"))
    running = [key for key in before if key.startswith("features") and "running_" in key]
    assert running and all(torch.equal(before[key], after[key]) for key in running)


def test_a_net_trained_with_the_seeds_head_is_saved_and_loaded_with_that_head(tiny_card, synthetic_split, tmp_path):
    card = one_epoch_train(synthetic_split, out_dir=tmp_path, name="seed_head", head="seed")
    assert card.head == "seed" and card.training["head"] == "seed"
    model, loaded = bundle_load(directory=tmp_path / "seed_head")
    # GAP -> BatchNorm -> dropout 0.5 -> linear, as the seed's Keras model; dropout is off once loaded.
    kinds = [type(layer) for layer in model.classifier]
    assert kinds == [torch.nn.BatchNorm1d, torch.nn.Dropout, torch.nn.Linear] and not model.training
    assert loaded.head == "seed" and model.classifier[0].running_var.ne(1).any()
    image = torch.rand(2, 3, tiny_card.image_size, tiny_card.image_size)
    with torch.no_grad():
        assert torch.equal(model(image), model(image))
    # A card that names no head (every card before heads had a choice) still gets the architecture's own.
    assert tiny_card.head is None
    assert isinstance(net_build("mobilenet_v2", card=tiny_card).classifier[1], torch.nn.Linear)


def test_an_unknown_head_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown head 'mlp'; choose one of own, seed"):
        net_build("mobilenet_v2", head="mlp")


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ("colour", "augment 'colour': one of reshoot, geometric, none"),
        ("native", "native crops are cut from working images: give the run its arrays"),
    ],
)
def test_an_augmentation_the_run_cannot_do_is_refused_before_any_image_is_read(
    synthetic_split, tmp_path, augment, message
):
    with pytest.raises(ValueError, match=message):
        train_run(
            arch="mobilenet_v2",
            train=synthetic_split["splits"]["train"],
            val=synthetic_split["splits"]["val"],
            out_dir=tmp_path,
            name="refused",
            epochs=1,
            image_size=32,
            augment=augment,
            cache_dir=tmp_path / "cache",
        )
    assert not (tmp_path / "cache").exists() and not (tmp_path / "refused").exists()


def test_occlusion_map_of_the_clip_probe_kind_has_the_image_shape(tiny_detector, synthetic_split):
    from detection.core.clip_probe import occlusion_map
    from detection.core.inference import cam_normalise
    from detection.core.preprocess import arrays_to_tensor

    ai = next(s for s in synthetic_split["splits"]["test"] if s.label == 1)
    batch = arrays_to_tensor([tiny_detector.canonical(Image.open(ai.path))])
    heat = cam_normalise(occlusion_map(tiny_detector.model, batch, grid=4))
    assert heat.shape == (tiny_detector.image_size,) * 2 and 0.0 <= heat.min() <= heat.max() <= 1.0


def test_every_model_kind_has_a_default_heatmap_layer_of_its_method():
    for arch in ARCHITECTURES:
        spec = architecture_get(arch)
        assert spec.heatmap.name == "Grad-CAM" and spec.heatmap_default_layer in spec.heatmap_layers
    clip = architecture_get("clip_probe")
    assert clip.heatmap.name == "occlusion" and clip.heatmap_default_layer == "occlusion"
    assert clip.heatmap.label == "Occlusion map"


def test_a_clip_probe_card_draws_its_heatmap_by_occlusion_at_its_one_layer(tiny_detector, synthetic_split):
    from detection.core.clip_probe import occlusion_map
    from detection.core.inference import Detector, cam_normalise
    from detection.core.preprocess import arrays_to_tensor

    # Occlusion needs only the logits, so the tiny net stands in for the probe under a clip_probe card.
    card = dataclasses.replace(tiny_detector.card, arch="clip_probe")
    detector = Detector(model=tiny_detector.model, card=card)
    array = detector.canonical(Image.open(synthetic_split["splits"]["test"][0].path))
    expected = cam_normalise(occlusion_map(detector.model, arrays_to_tensor([array])))
    assert np.array_equal(detector.heatmap_array(array), expected)
    assert np.array_equal(detector.heatmap_array(array, layer="occlusion"), expected) and not detector._cams
    with pytest.raises(ValueError, match="has only 'occlusion'"):
        detector.heatmap_array(array, layer="features.13")


def test_a_clip_probe_bundle_without_its_encoder_counts_as_untrained(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    card = {
        "name": "clip",
        "arch": "clip_probe",
        "version": "1",
        "image_size": 128,
        "thresholds": {"low": 0.3, "high": 0.7},
    }
    (folder / "card.json").write_text(json.dumps({**card, "encoder_file": "clip_encoder.int8.onnx"}))
    with pytest.raises(NoTrainedWeights, match=r"^no trained weights for clip$"):
        detector_load(weights_dir=tmp_path, name="clip")


def test_encoder_installation_refuses_a_file_with_the_wrong_sha256(tmp_path):
    from detection.core.clip_probe import encoder_install

    source = tmp_path / "source.onnx"
    source.write_bytes(b"not the encoder")
    with pytest.raises(ValueError, match="sha256"):
        encoder_install(source=source, destination=tmp_path)
    assert not list(tmp_path.glob("clip_encoder*"))


def test_an_epoch_keeps_each_pair_in_one_batch_and_every_image_once():
    import random

    from detection.core.train import epoch_batches

    pairs = [[0, 7], [3, 4, 9], [12, 13]]
    for seed in range(20):
        batches = epoch_batches(14, together=pairs, batch_size=4, rng=random.Random(seed))
        assert sorted(i for batch in batches for unit in batch for i in unit) == list(range(14))
        assert all(sum(map(len, batch)) <= 4 for batch in batches)
        units = [unit for batch in batches for unit in batch]
        assert all(pair in units for pair in pairs), "no pair is cut"


def test_without_pairs_an_epoch_is_slices_of_one_shuffled_order():
    import random

    from detection.core.train import epoch_batches

    order = list(range(10))
    random.Random(3).shuffle(order)
    batches = epoch_batches(10, together=[], batch_size=4, rng=random.Random(3))
    assert [[i for unit in batch for i in unit] for batch in batches] == [order[:4], order[4:8], order[8:]]
