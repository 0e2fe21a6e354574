"""The seed's network in Keras and the ImageNet start it can take from torchvision's MobileNetV2."""

from __future__ import annotations

import keras
import numpy as np

# Grad-CAM candidates, shallow to deep; the seed chose block_13_expand (stride 16) for its sharper maps.
SEED_GRADCAM_LAYERS = ("block_13_expand", "block_16_project", "out_relu")
SEED_GRADCAM_DEFAULT = "block_13_expand"
SEED_DESCRIPTION = (
    "keras.applications.MobileNetV2(include_top=False, weights=None) -> GlobalAveragePooling2D -> "
    "BatchNormalization -> Dropout(0.5) -> Dense(1, sigmoid) = P(AI)"
)
TORCH_BN_EPSILON = 1e-5


def seed_mobilenet_build(*, image_size: int, dropout: float = 0.5) -> keras.Model:
    """The seed detector: MobileNetV2 base (nothing downloaded) and its head, as one flat functional model so
    every base layer can be a Grad-CAM target."""
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="ai_probability")(x)
    return keras.Model(base.input, out, name="mobilenet_v2_seed")


def _torch_units(state: dict[str, np.ndarray]) -> list[tuple[str, list[np.ndarray]]]:
    """("conv", [kernel]) and ("bn", [weight, bias, running_mean, running_var]) in the state's order, whatever
    the keys are called: a 4-D tensor is a kernel, four 1-D tensors of one length a BatchNorm (its scalar
    num_batches_tracked is skipped)."""
    tensors = [np.asarray(value, dtype=np.float32) for value in state.values() if np.ndim(value) > 0]
    units, index = [], 0
    while index < len(tensors):
        tensor = tensors[index]
        if tensor.ndim == 4:
            units.append(("conv", [tensor]))
            index += 1
        elif (
            tensor.ndim == 1
            and all(t.shape == tensor.shape for t in tensors[index : index + 4])
            and (index + 4 <= len(tensors))
        ):
            units.append(("bn", tensors[index : index + 4]))
            index += 4
        else:
            raise ValueError(f"tensor {index} of shape {tensor.shape} is neither a kernel nor BatchNorm statistics")
    return units


def mobilenet_torch_weights_set(model: keras.Model, state: dict[str, np.ndarray]) -> int:
    """Set the MobileNetV2 base of `model` from torchvision's `mobilenet_v2().features` state dict (any key
    names, torchvision's tensor order). Kernels go from OIHW to Keras' HWIO (depthwise: HW C 1); BatchNorm's
    scale absorbs the two libraries' epsilons (1e-5 vs Keras' 1e-3) so inference matches exactly. Returns
    the number of layers set; raises ValueError when the state does not fit."""
    units = _torch_units(state)
    kinds = keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.BatchNormalization
    targets = [layer for layer in model.layers if isinstance(layer, kinds) and not layer.name.startswith("head")]
    if len(units) != len(targets):
        raise ValueError(f"the state holds {len(units)} conv/BatchNorm units, the Keras base {len(targets)}")
    for layer, (kind, tensors) in zip(targets, units, strict=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            if kind != "bn":
                raise ValueError(f"{layer.name}: expected BatchNorm tensors, got a convolution")
            gamma, beta, mean, var = tensors
            gamma = gamma * np.sqrt(var + layer.epsilon) / np.sqrt(var + TORCH_BN_EPSILON)
            weights = [gamma, beta, mean, var]
        else:
            if kind != "conv":
                raise ValueError(f"{layer.name}: expected a convolution kernel, got BatchNorm tensors")
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            weights = [tensors[0].transpose(2, 3, 0, 1) if depthwise else tensors[0].transpose(2, 3, 1, 0)]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(w.shape) for w in weights] != expected:
            raise ValueError(f"{layer.name}: shapes {[w.shape for w in weights]} do not fit {expected}")
        layer.set_weights([w.astype(np.float32) for w in weights])
    return len(targets)
