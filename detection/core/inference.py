"""Load a bundle and score images: probabilities, calibrated verdicts and Grad-CAM overlays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from detection.core.bundle import CARD_FILE, MODEL_FILE, bundle_load, card_load
from detection.core.card import ModelCard
from detection.core.clip_probe import occlusion_map
from detection.core.files import NoTrainedWeights
from detection.core.nets import gradcam_layers
from detection.core.preprocess import arrays_to_tensor
from detection.core.registry import GRAD_CAM, OCCLUSION, architecture_get, heatmap_default_layer, heatmap_layer_names
from detection.core.scoring import BATCH_SIZE, ScoringBase, cam_normalise

__all__ = ["BATCH_SIZE", "Detector", "NoTrainedWeights", "cam_normalise", "detector_load"]

AI_CLASS = 1


class _RawGradCAM(GradCAM):
    """GradCAM without the library's per-image min-max scaling, so we can normalise robustly."""

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
        activations = [a.cpu().numpy() for a in self.activations_and_grads.activations]
        grads = [g.cpu().numpy() for g in self.activations_and_grads.gradients]
        width, height = self.get_target_width_height(input_tensor)
        cams = []
        for layer, acts, layer_grads in zip(self.target_layers, activations, grads, strict=True):
            cam = np.maximum(self.get_cam_image(input_tensor, layer, targets, acts, layer_grads, eigen_smooth), 0)
            upsampled = torch.nn.functional.interpolate(
                torch.from_numpy(cam[:, None].astype(np.float32)),
                size=(height, width),
                mode="bilinear",
                align_corners=False,
            )
            cams.append(upsampled.numpy())
        return cams

    def aggregate_multi_layers(self, cam_per_target_layer):
        return np.maximum(np.concatenate(cam_per_target_layer, axis=1), 0).mean(axis=1)


class Detector(ScoringBase):
    """A loaded model with its card; `predict` returns the AI probability of each image."""

    def __init__(self, *, model: nn.Module, card: ModelCard, device: str = "cpu") -> None:
        self.name: str = card.name
        self.version: str = str(card.version)
        self.card: ModelCard = card
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.image_size: int = int(card.image_size)
        self._cams: dict[str, _RawGradCAM] = {}

    def predict_arrays(self, arrays: Sequence[np.ndarray]) -> list[float]:
        """AI probabilities for canonical uint8 arrays, in batches."""
        probabilities: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(arrays), BATCH_SIZE):
                batch = arrays_to_tensor(arrays[start : start + BATCH_SIZE]).to(self.device)
                probs = torch.softmax(self.model(batch).float(), dim=1)[:, AI_CLASS]
                probabilities.extend(probs.cpu().tolist())
                self._cams_release()
        return probabilities

    def embeddings_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray | None:
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            return None
        with torch.inference_mode():
            return encoder.embed(arrays_to_tensor(arrays).to(self.device)).float().cpu().numpy()

    def predict_checked_embedded(
        self, images: Sequence[Image.Image]
    ) -> list[tuple[float, float | None, np.ndarray | None]]:
        if getattr(self.model, "encoder", None) is None:
            return super().predict_checked_embedded(images)
        embeddings = np.concatenate(
            [
                self.embeddings_arrays([self.canonical(image) for image in images[start : start + BATCH_SIZE]])
                for start in range(0, len(images), BATCH_SIZE)
            ]
        )
        with torch.inference_mode():
            logits = self.model.head(torch.from_numpy(embeddings).to(self.model.head.weight.device)).float()
        probabilities = torch.softmax(logits, dim=1)[:, AI_CLASS].tolist()
        # As predict_checked: a CLIP probe has no stability variant.
        return [(probability, None, embeddings[i : i + 1]) for i, probability in enumerate(probabilities)]

    def golden_outputs(self, arrays: Sequence[np.ndarray]) -> dict[str, list]:
        batch = arrays_to_tensor(arrays).to(self.device)
        outputs: dict[str, list] = {}
        with torch.inference_mode():
            encoder = getattr(self.model, "encoder", None)
            if encoder is not None:
                embeddings = encoder.embed(batch).float()
                outputs["embeddings"] = embeddings.cpu().tolist()
                logits = self.model.head(embeddings.to(self.model.head.weight.device)).float()
            else:
                logits = self.model(batch).float()
        outputs["logits"] = logits.cpu().tolist()
        outputs["probabilities"] = torch.softmax(logits, dim=1)[:, AI_CLASS].cpu().tolist()
        return outputs

    def _cams_release(self) -> None:
        # Grad-CAM's forward hooks stay on the model and keep every activation they see; drop them so
        # plain predictions in a long-lived worker do not pile up memory.
        for cam in self._cams.values():
            cam.activations_and_grads.activations = []
            cam.activations_and_grads.gradients = []

    def _cam(self, layer: str) -> _RawGradCAM:
        # One CAM object per layer for the Detector's life: building one registers hooks on the model.
        if layer not in self._cams:
            layers = gradcam_layers(self.model, self.card.arch)
            if layer not in layers:
                raise ValueError(f"unknown Grad-CAM layer {layer!r}; choose one of {', '.join(layers)}")
            self._cams[layer] = _RawGradCAM(model=self.model, target_layers=[layers[layer]])
        return self._cams[layer]

    def heatmap_array(self, array: np.ndarray, *, layer: str | None = None) -> np.ndarray:
        """The map of the architecture's heatmap method at `layer` (its default when None)."""
        layer = layer or heatmap_default_layer(self.card)
        method = architecture_get(self.card.arch).heatmap
        tensor = arrays_to_tensor([array]).to(self.device)
        return cam_normalise(self._heatmappers[method](self, tensor, layer))

    def _gradcam(self, tensor: torch.Tensor, layer: str) -> np.ndarray:
        raw = self._cam(layer)(input_tensor=tensor, targets=[ClassifierOutputTarget(AI_CLASS)])[0]
        self._cams_release()
        return raw

    def _occlusion(self, tensor: torch.Tensor, layer: str) -> np.ndarray:
        if layer not in heatmap_layer_names(self.card):
            raise ValueError(f"unknown heatmap layer {layer!r}; {self.card.arch} has only 'occlusion'")
        return occlusion_map(self.model, tensor)

    _heatmappers = {GRAD_CAM: _gradcam, OCCLUSION: _occlusion}


def detector_load(*, weights_dir: Path, name: str, device: str = "cpu", threads: int | None = None) -> Detector:
    """`threads`: torch's intra-op threads, set when given."""
    if threads:
        torch.set_num_threads(threads)
    directory = Path(weights_dir) / name
    if not (directory / MODEL_FILE).is_file() or not (directory / CARD_FILE).is_file():
        raise NoTrainedWeights(f"no trained weights for {name}")
    encoder_file = card_load(directory=directory).encoder_file
    if encoder_file and not (directory / encoder_file).is_file():
        # clip_probe: the encoder is not in git; see clip_probe.encoder_extract.
        raise NoTrainedWeights(f"no trained weights for {name}")
    model, card = bundle_load(directory=directory)
    return Detector(model=model, card=card, device=device)
