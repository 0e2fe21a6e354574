"""Names of architectures and Grad-CAM layers: plain data, no torch import, safe for web processes."""

from __future__ import annotations

ARCHITECTURES = ("resnet50", "mobilenet_v2", "efficientnet_b0", "efficientnet_lite0")

# Grad-CAM layers per arch: the ends of the stride-8, -16 and -32 stages. The default is the stride-16
# stage: at the small canonical size (128 px) the last stage is only 4x4 cells, too coarse to point at
# a region.
GRADCAM_LAYER_PATHS: dict[str, tuple[str, ...]] = {
    "resnet50": ("layer2", "layer3", "layer4"),
    "mobilenet_v2": ("features.6", "features.13", "features.18"),
    "efficientnet_b0": ("features.3", "features.5", "features.8"),
    "efficientnet_lite0": ("features.3", "features.5", "features.8"),
}
GRADCAM_DEFAULT_LAYER: dict[str, str] = {
    "resnet50": "layer3",
    "mobilenet_v2": "features.13",
    "efficientnet_b0": "features.5",
    "efficientnet_lite0": "features.5",
    # The CLIP probe runs in onnxruntime, out of Grad-CAM's reach: its map is an occlusion map.
    "clip_probe": "occlusion",
}


def gradcam_layer_names(card: dict) -> list[str]:
    """A bundle's Grad-CAM layers, shallow to deep: its card's own list (Keras bundles name theirs), else its arch's."""
    return list(card.get("gradcam_layers") or GRADCAM_LAYER_PATHS.get(card["arch"], ()))


def gradcam_default_layer(card: dict) -> str | None:
    return card.get("gradcam_default_layer") or GRADCAM_DEFAULT_LAYER.get(card["arch"])
