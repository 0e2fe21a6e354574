"""Torchvision backbones with a 2-class head (index 1 = AI-generated), never with downloaded weights."""

from __future__ import annotations

from torch import nn
from torchvision import models

from detection.core.layers import ARCHITECTURES, GRADCAM_DEFAULT_LAYER, GRADCAM_LAYER_PATHS

__all__ = [
    "ARCHITECTURES", "FINETUNE_MODES", "GRADCAM_DEFAULT_LAYER", "gradcam_layers", "net_build", "net_finetune_set",
    "net_train_mode",
]

FINETUNE_MODES = ("head", "last-block", "all")


def _arch_check(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def net_build(arch: str, *, num_classes: int = 2) -> nn.Module:
    """Randomly initialised torchvision net with a `num_classes` head."""
    _arch_check(arch)
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
