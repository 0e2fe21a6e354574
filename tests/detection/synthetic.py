"""A tiny synthetic data folder: "AI" images carry a periodic checkerboard (upsampling artefact), "real"
ones are smooth random fields with plain sensor-like noise. Both are written as PNG at the same size."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

SCENERIES = ("forest", "sea")


def _smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.uniform(40, 215, size=(6, 6, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)


def _checkerboard(size: int, *, amplitude: float) -> np.ndarray:
    """The "AI" trace: a +-amplitude checkerboard of 2 px cells, the same on every channel."""
    yy, xx = np.mgrid[0:size, 0:size]
    return (((yy // 2 + xx // 2) % 2) * 2 - 1)[..., None] * amplitude


def image_synthetic(rng: np.random.Generator, *, ai: bool, size: int) -> Image.Image:
    field = _smooth_field(rng, size)
    if ai:
        field += _checkerboard(size, amplitude=18.0)
    else:
        field += rng.normal(0, 4, field.shape)
    return Image.fromarray(np.clip(field, 0, 255).round().astype(np.uint8))


def folder_synthetic(
    root: Path, *, per_class_scenery: int = 10, size: int = 64, seed: int = 0, groups_csv: bool = True
) -> Path:
    """Write `root/{real,ai_generated}/{scenery}/*.png` (+ groups.csv with groups of two) and return root."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in ("real", "ai_generated"):
        for scenery in SCENERIES:
            folder = root / label / scenery
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class_scenery):
                rel = f"{label}/{scenery}/{i:03d}.png"
                image_synthetic(rng, ai=label == "ai_generated", size=size).save(root / rel)
                rows.append({"path": rel, "label": label, "scenery": scenery, "group": f"{label}-{scenery}-{i // 2}"})
    if groups_csv:
        with (root / "groups.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["path", "label", "scenery", "group"])
            writer.writeheader()
            writer.writerows(rows)
    return root


def image_with_artefact(rng: np.random.Generator, *, size: int, quadrant: tuple[int, int] | None) -> Image.Image:
    """A smooth noisy field; with a quadrant (row, column in {0, 1}) the checkerboard artefact covers that
    quarter only, so the quarter alone decides the class and a heatmap has somewhere to point."""
    field = _smooth_field(rng, size) + rng.normal(0, 4, (size, size, 3))
    if quadrant is not None:
        half = size // 2
        row, col = quadrant
        field[row * half : (row + 1) * half, col * half : (col + 1) * half] += _checkerboard(half, amplitude=30.0)
    return Image.fromarray(np.clip(field, 0, 255).round().astype(np.uint8))


def folder_of_sources(root: Path) -> Path:
    """Three genuine collections and three generators, 6 images each, with sources and generators named: units
    enough for a leave-source-out protocol of three folds."""
    rng = np.random.default_rng(0)
    rows = []
    for label, names in (("real", ("phones", "museum", "streets")), ("ai_generated", ("genA v1", "genB", "genC"))):
        for name in names:
            for i in range(6):
                path = Path(label) / "other" / f"{name.replace(' ', '_')}_{i}.png"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                image_synthetic(rng, ai=label != "real", size=96).save(root / path)
                source = name if label == "real" else "web"
                generator = "" if label == "real" else name
                rows.append([path, label, "other", f"{name}{i}", source, generator])
    return _groups_csv_write(root, rows)


def _groups_csv_write(root: Path, rows: list[list]) -> Path:
    with (root / "groups.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "scenery", "group", "source", "generator"])
        writer.writerows(rows)
    return root


def aligned_of_sources(root: Path, *, photos: Path) -> Path:
    """A content-aligned folder as `make_aligned_fakes` writes it, for the genuine photos of `photos` (a
    `folder_of_sources` folder): each photo's copy beside its "round trip", the same pixels with the
    checkerboard trace added, both under the photo's group prefixed with the folder's name."""
    rows = []
    with (photos / "groups.csv").open(newline="") as handle:
        originals = [row for row in csv.DictReader(handle) if row["label"] == "real"]
    for row in originals:
        pixels = np.asarray(Image.open(photos / row["path"]).convert("RGB"), dtype=np.float32)
        traced = pixels + _checkerboard(pixels.shape[0], amplitude=18.0)
        name = Path(row["path"]).name
        group = f"{photos.name}:{row['group']}"
        for label, source, image in (("real", row["source"], pixels), ("ai_generated", "tae_taesd", traced)):
            path = Path(label) / source / name
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(root / path)
            rows.append([path, label, "other", group, source, "" if label == "real" else source])
    return _groups_csv_write(root, rows)
