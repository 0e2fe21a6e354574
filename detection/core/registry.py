"""The architectures a bundle may name in its card's `arch`, as plain data (no torch, no TensorFlow import), so
web processes can read them too: the framework that runs each, its default input size and scale, the parts
fine-tuning unfreezes and its heatmap method with the layers it can be taken at. The networks themselves are
built by `nets.net_build` (PyTorch) and `keras/` (TensorFlow); the heatmaps drawn by the detectors, each
after its architecture's method.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detection.core.card import ModelCard

TORCH = "torch"
TENSORFLOW = "tensorflow"


@dataclass(frozen=True)
class HeatmapMethod:
    name: str
    label: str  # what the review page calls a map of this kind


GRAD_CAM = HeatmapMethod(name="Grad-CAM", label="Grad-CAM")
OCCLUSION = HeatmapMethod(name="occlusion", label="Occlusion map")
CROP_SCORES = HeatmapMethod(name="crop scores", label="Crop-score map")


@dataclass(frozen=True)
class Architecture:
    name: str
    framework: str
    heatmap: HeatmapMethod
    # Layers the heatmap can be taken at, shallow to deep, and the default; empty where each bundle's card
    # names its own (Keras bundles).
    heatmap_layers: tuple[str, ...] = ()
    heatmap_default_layer: str | None = None
    image_size: int = 128
    input_scale: str = "imagenet"  # a key of preprocess.INPUT_SCALES
    # Submodule paths of the classifier head and of the last feature block: what `--finetune head` and
    # `last-block` leave trainable. None for networks not trained by `train_run`.
    head: str | None = None
    last_block: str | None = None
    trainable: bool = False  # `train_run` trains it from a torchvision builder
    # "module:function" opening a bundle of this architecture in this process, called by
    # `loading.detector_open` with keyword-only weights_dir, name, device and threads; named, not imported,
    # so reading the registry imports no framework. None for Keras, which `detector_open` opens itself (in
    # this process or in a TensorFlow child).
    loader: str | None = "detection.core.inference:detector_load"


# Grad-CAM layers of the torchvision nets: the ends of the stride-8, -16 and -32 stages. The default is the
# stride-16 stage: at the small canonical size (128 px) the last stage is only 4x4 cells, too coarse to point
# at a region.
_EFFICIENTNET_B0 = Architecture(
    name="efficientnet_b0",
    framework=TORCH,
    heatmap=GRAD_CAM,
    heatmap_layers=("features.3", "features.5", "features.8"),
    heatmap_default_layer="features.5",
    head="classifier",
    last_block="features.8",
    trainable=True,
)

_REGISTRY: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            name="resnet50",
            framework=TORCH,
            heatmap=GRAD_CAM,
            heatmap_layers=("layer2", "layer3", "layer4"),
            heatmap_default_layer="layer3",
            head="fc",
            last_block="layer4",
            trainable=True,
        ),
        Architecture(
            name="mobilenet_v2",
            framework=TORCH,
            heatmap=GRAD_CAM,
            heatmap_layers=("features.6", "features.13", "features.18"),
            heatmap_default_layer="features.13",
            head="classifier",
            last_block="features.18",
            trainable=True,
        ),
        _EFFICIENTNET_B0,
        # Laid out like torchvision's EfficientNet, so the same layers and parts; it rescales to the [-1, 1] of
        # its ImageNet start inside the net, from the same ImageNet-normalised input.
        replace(_EFFICIENTNET_B0, name="efficientnet_lite0"),
        replace(_EFFICIENTNET_B0, name="efficientnet_lite2"),
        # The CLIP probe runs its encoder in onnxruntime, out of Grad-CAM's reach: its map is an occlusion map.
        Architecture(
            name="clip_probe",
            framework=TORCH,
            heatmap=OCCLUSION,
            heatmap_layers=("occlusion",),
            heatmap_default_layer="occlusion",
            head="head",
        ),
        # A probe on several CLIP blocks over a global view and crops (block_detector): its map paints each crop's
        # score, and its input is its working image, not a small square.
        Architecture(
            name="clip_blocks",
            framework=TORCH,
            heatmap=CROP_SCORES,
            heatmap_layers=("crops",),
            heatmap_default_layer="crops",
            loader="detection.core.block_detector:block_detector_load",
        ),
        # Every Keras bundle: its card describes its network, input scale and Grad-CAM layers.
        Architecture(name="keras", framework=TENSORFLOW, heatmap=GRAD_CAM, loader=None),
    )
}

# What `train_detector --arch` offers.
ARCHITECTURES = tuple(name for name, arch in _REGISTRY.items() if arch.trainable)


def architecture_get(name: str) -> Architecture:
    """ValueError for a name no architecture is registered under."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(_REGISTRY)}") from None


def heatmap_layer_names(card: ModelCard) -> list[str]:
    """A bundle's heatmap layers, shallow to deep: its card's own list (Keras bundles name theirs), else its
    architecture's."""
    return list(card.gradcam_layers or architecture_get(card.arch).heatmap_layers)


def heatmap_default_layer(card: ModelCard) -> str | None:
    return card.gradcam_default_layer or architecture_get(card.arch).heatmap_default_layer
