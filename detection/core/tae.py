"""Tiny latent autoencoders (the TAESD family): distilled twins of five generators' VAEs.

A genuine photo encoded and decoded again keeps its content and gains the decoder's trace, so a photo and
its round trip differ in that trace alone (content-aligned pairs, as in B-Free and DDA). The architecture
is the one `../shared/generators/tae/README.md` describes; the files are read only from that folder, each
checked against its `SHA256SUMS` line and loaded strictly, so a wrong module or a changed file fails loudly.
"""

from __future__ import annotations

import hashlib
import io
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# parents[3] is the folder holding the checkout, where ../shared lives.
TAE_DIR = Path(__file__).resolve().parents[3] / "shared" / "generators" / "tae"
LATENT_CHANNELS = {"taesd": 4, "taesdxl": 4, "taesd3": 16, "taef1": 16, "taef2": 32}
DECODERS = tuple(LATENT_CHANNELS)
# TAEF2 ships as torch state dicts with pooled blocks; the other four as bf16 safetensors without.
POOLED = frozenset({"taef2"})
SIDE_MULTIPLE = 8  # latents are at 1/8 of the image's sides
WIDTH = 64


def _conv(n_in: int, n_out: int, *, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class _Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Three convolutions added to the input, then ReLU; pooled (TAEF2) blocks first add `pool(x)`."""

    def __init__(self, *, pooled: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(WIDTH, WIDTH), nn.ReLU(), _conv(WIDTH, WIDTH), nn.ReLU(), _conv(WIDTH, WIDTH))
        self.pool = (
            nn.Sequential(
                nn.Conv2d(WIDTH, 4 * WIDTH, 1, bias=False),
                nn.GroupNorm(4, 4 * WIDTH),
                nn.ReLU(),
                nn.Conv2d(4 * WIDTH, WIDTH, 1, bias=False),
            )
            if pooled
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


def encoder_build(*, latent_channels: int, pooled: bool) -> nn.Sequential:
    layers: list[nn.Module] = [_conv(3, WIDTH), Block()]
    for group in range(3):
        layers.append(_conv(WIDTH, WIDTH, stride=2, bias=False))
        layers.extend(Block(pooled=pooled and group == 2) for _ in range(3))
    layers.append(_conv(WIDTH, latent_channels))
    return nn.Sequential(*layers)


def decoder_build(*, latent_channels: int, pooled: bool) -> nn.Sequential:
    layers: list[nn.Module] = [_Clamp(), _conv(latent_channels, WIDTH), nn.ReLU()]
    for group in range(3):
        layers.extend(Block(pooled=pooled and group == 0) for _ in range(3))
        layers.extend([nn.Upsample(scale_factor=2, mode="nearest"), _conv(WIDTH, WIDTH, bias=False)])
    layers.extend([Block(), _conv(WIDTH, 3)])
    return nn.Sequential(*layers)


def _pinned_sums(directory: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (directory / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest.lower()
    return sums


def _state_read(path: Path, *, sha256: str | None) -> dict[str, torch.Tensor]:
    """The file's tensors, read from the very bytes whose sha256 was checked."""
    if sha256 is None:
        raise ValueError(f"{path.name} is not pinned in {path.parent / 'SHA256SUMS'}")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ValueError(f"{path}: sha256 {actual} does not match the pinned {sha256}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load as safetensors_load

        return safetensors_load(data)
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class TinyAutoencoder(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in LATENT_CHANNELS:
            raise ValueError(f"unknown decoder {name!r}; choose one of {', '.join(DECODERS)}")
        self.name = name
        pooled = name in POOLED
        self.encoder = encoder_build(latent_channels=LATENT_CHANNELS[name], pooled=pooled)
        self.decoder = decoder_build(latent_channels=LATENT_CHANNELS[name], pooled=pooled)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W in [0, 1] (sides multiples of 8) -> its round trip, clamped to [0, 1]."""
        return self.decoder(self.encoder(images)).clamp(0, 1)


def tae_load(name: str, *, directory: Path = TAE_DIR) -> TinyAutoencoder:
    """Encoder and decoder of `name`, sha256-checked and loaded strictly, in fp32 and eval mode."""
    directory = Path(directory)
    model = TinyAutoencoder(name)
    sums = _pinned_sums(directory)
    suffix = ".pth" if name in POOLED else ".safetensors"
    for part in ("encoder", "decoder"):
        path = directory / f"{name}_{part}{suffix}"
        state = _state_read(path, sha256=sums.get(path.name))
        getattr(model, part).load_state_dict(state, strict=True)
    return model.float().eval().requires_grad_(False)


@cache
def _tae_cached(name: str, directory: Path) -> TinyAutoencoder:
    return tae_load(name, directory=directory)


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Centred (left, top, right, bottom) box whose sides are the largest multiples of 8 that fit."""
    new_width, new_height = width - width % SIDE_MULTIPLE, height - height % SIDE_MULTIPLE
    if not new_width or not new_height:
        raise ValueError(f"a {width}x{height} image has a side under {SIDE_MULTIPLE} pixels")
    left, top = (width - new_width) // 2, (height - new_height) // 2
    return left, top, left + new_width, top + new_height


def roundtrip(image, decoder_name: str, *, directory: Path = TAE_DIR) -> torch.Tensor:
    """Encode and decode `image` with one of `DECODERS`, its sides first cropped (centred) to multiples
    of 8. `image`: uint8 H x W x 3 (numpy array or PIL image), or a float tensor in [0, 1], 3 x H x W or
    N x 3 x H x W. Returns float in [0, 1], channels first, batched as the input was."""
    if isinstance(image, torch.Tensor):
        batch = image.float()
    else:
        batch = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    single = batch.dim() == 3
    if single:
        batch = batch.unsqueeze(0)
    left, top, right, bottom = crop_box(batch.shape[-1], batch.shape[-2])
    batch = batch[..., top:bottom, left:right]
    model = _tae_cached(decoder_name, Path(directory).resolve())
    with torch.inference_mode():
        out = model(batch)
    return out[0] if single else out


def psnr(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    mse = F.mse_loss(other.float(), reference.float()).item()
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))
