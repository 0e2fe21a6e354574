"""Data folders, grouped and stratified splits, and the JSON split file that makes evaluations repeatable.

A data folder is laid out `{real,ai_generated}/{scenery}/*`, optionally with `groups.csv`
(`path,label,scenery,group[,source,...]`, paths relative to the folder). Near-duplicates share a group and
a group never straddles two splits. Folders whose groups.csv names sources (several collections of
genuine photos) give up whole sources to a "heldout" set that training never sees.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = {"real": 0, "ai_generated": 1}
LABEL_NAMES = {value: key for key, value in LABELS.items()}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SPLITS = ("train", "val", "test", "heldout")
PHASH_MAX_DISTANCE = 8
SPLIT_FORMAT = 1


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 1 = AI-generated, 0 = real
    scenery: str
    group: str
    source: str
    generator: str = ""  # groups.csv `generator` column where a folder has one (the AI model, or a camera)

    @property
    def roundtrip_decoder(self) -> str | None:
        """The decoder whose content-aligned round trip this image is (its source names it), else None."""
        return self.source.removeprefix(ROUNDTRIP_PREFIX) if self.source.startswith(ROUNDTRIP_PREFIX) else None


# A content-aligned round trip's source and generator: one source per decoder in a leave-source-out protocol.
ROUNDTRIP_PREFIX = "tae_"


def roundtrip_source(decoder: str) -> str:
    return f"{ROUNDTRIP_PREFIX}{decoder}"


def labels_both(train: Sequence[Sample], val: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """The labels of a training and a validation split; ValueError unless each holds both classes."""
    train_labels, val_labels = np.array([s.label for s in train]), np.array([s.label for s in val])
    if len(set(train_labels.tolist())) < 2 or len(set(val_labels.tolist())) < 2:
        raise ValueError("train and val must each hold both real and AI images")
    return train_labels, val_labels


def _dhash(path: Path) -> int:
    """64-bit difference hash; near-duplicates differ in few bits."""
    with Image.open(path) as img:
        img.draft("L", (64, 64))  # JPEG decodes at reduced scale: big files hash fast
        small = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if bit else "0" for bit in bits), 2)


def phash_groups(paths: Sequence[Path], *, max_distance: int = PHASH_MAX_DISTANCE) -> list[int]:
    """Group index per path: paths within `max_distance` bits (transitively) share a group."""
    hashes = np.array([_dhash(path) for path in paths], dtype=np.uint64)
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(paths)):
        xor = hashes[i + 1 :] ^ hashes[i]
        distances = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        for j in np.nonzero(distances <= max_distance)[0]:
            parent[root(i + 1 + int(j))] = root(i)
    return [root(i) for i in range(len(paths))]


def folder_scan(*, folder: Path) -> list[Sample]:
    """Samples of one data folder, from its groups.csv or, lacking one, from the tree + perceptual hash."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    default_source = folder.name
    groups_csv = folder / "groups.csv"
    samples: list[Sample] = []
    if groups_csv.is_file():
        with groups_csv.open(newline="") as handle:
            for row in csv.DictReader(handle):
                path = folder / row["path"]
                if row["label"] not in LABELS or not path.is_file():
                    continue
                samples.append(
                    Sample(
                        path=path,
                        label=LABELS[row["label"]],
                        scenery=row["scenery"],
                        group=f"{folder.name}:{row['group']}",
                        source=row.get("source") or default_source,
                        generator=row.get("generator") or "",
                    )
                )
        return samples
    paths = sorted(
        path for label in LABELS for path in (folder / label).glob("*/*") if path.suffix.lower() in IMAGE_SUFFIXES
    )
    for path, group in zip(paths, phash_groups(paths), strict=True):
        samples.append(
            Sample(
                path=path,
                label=LABELS[path.parent.parent.name],
                scenery=path.parent.name,
                group=f"{folder.name}:phash{group}",
                source=default_source,
            )
        )
    return samples


def data_fingerprint(*, folders: Sequence[Path]) -> str:
    """sha256 over every image's relative path and byte size: changes when the data changes."""
    digest = hashlib.sha256()
    for folder in folders:
        folder = Path(folder)
        digest.update(folder.name.encode())
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (path.suffix.lower() in IMAGE_SUFFIXES or path.name == "groups.csv"):
                digest.update(f"{path.relative_to(folder)}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def _holdout_sources_pick(samples: Sequence[Sample], *, fraction: float, rng: random.Random) -> list[str]:
    """Whole sources whose images add up to about `fraction` of the multi-source images."""
    counts: dict[str, int] = defaultdict(int)
    for sample in samples:
        counts[sample.source] += 1
    total = sum(counts.values())
    order = sorted(counts)
    rng.shuffle(order)
    picked: list[str] = []
    held = 0
    for source in order:
        if held >= 0.75 * fraction * total:
            break
        # Keep enough sources in training: no single pick may push past 1.25x the target.
        if held + counts[source] <= 1.25 * fraction * total:
            picked.append(source)
            held += counts[source]
    return sorted(picked)


def groups_assign(samples: Sequence[Sample], *, fractions: Sequence[float], rng: random.Random) -> dict[str, int]:
    """Split index per group: groups are dealt within each (label, scenery) stratum to the split that
    is furthest below its share, so every stratum is split by `fractions` and no group is cut."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[sample.group].append(sample)
    strata: dict[tuple[int, str], list[str]] = defaultdict(list)
    for group, members in groups.items():
        strata[(members[0].label, members[0].scenery)].append(group)
    assignment: dict[str, int] = {}
    for stratum in sorted(strata):
        names = sorted(strata[stratum])
        rng.shuffle(names)
        total = sum(len(groups[name]) for name in names)
        filled = [0] * len(fractions)
        for name in names:
            deficits = [fractions[k] * total - filled[k] for k in range(len(fractions))]
            k = max(range(len(fractions)), key=lambda index: deficits[index])
            assignment[name] = k
            filled[k] += len(groups[name])
    return assignment


def split_make(
    *,
    folders: Sequence[Path],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    holdout_sources: Sequence[str] | None = None,
    holdout_fraction: float = 0.2,
) -> dict:
    """Seeded split of all folders into train/val/test (+ heldout whole sources). Returns the split dict
    (see `split_save`) with `Sample` lists under `splits`."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    multi_source: list[Sample] = []
    for folder in folders:
        scanned = folder_scan(folder=folder)
        samples.extend(scanned)
        if len({sample.source for sample in scanned}) > 1:
            multi_source.extend(scanned)
    if holdout_sources is None:
        holdout_sources = (
            _holdout_sources_pick(multi_source, fraction=holdout_fraction, rng=rng) if multi_source else []
        )
    held = set(holdout_sources)
    unknown = held - {sample.source for sample in samples}
    if unknown:
        raise ValueError(f"held-out sources not in the data: {', '.join(sorted(unknown))}")
    rest = [sample for sample in samples if sample.source not in held]
    assignment = groups_assign(rest, fractions=fractions, rng=rng)
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for sample in rest:
        splits[SPLITS[assignment[sample.group]]].append(sample)
    splits["heldout"] = [sample for sample in samples if sample.source in held]
    return {
        "format": SPLIT_FORMAT,
        "seed": seed,
        "fractions": list(fractions),
        "holdout_sources": sorted(held),
        "folders": {Path(folder).name: str(folder) for folder in folders},
        "fingerprint": data_fingerprint(folders=folders),
        "splits": splits,
    }


def _sample_to_row(sample: Sample, folders: dict[str, str]) -> list:
    for name, folder in folders.items():
        if sample.path.is_relative_to(folder):
            return [
                name,
                str(sample.path.relative_to(folder)),
                sample.label,
                sample.scenery,
                sample.group,
                sample.source,
            ]
    raise ValueError(f"{sample.path} is in none of the split's folders")


def split_save(split: dict, *, path: Path) -> None:
    """Write the split as JSON; paths are stored relative to their data folder's name."""
    folders = split["folders"]
    payload = {key: value for key, value in split.items() if key != "splits"}
    payload["columns"] = ["folder", "path", "label", "scenery", "group", "source"]
    payload["splits"] = {
        name: [_sample_to_row(s, folders) for s in samples] for name, samples in split["splits"].items()
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1) + "\n")


def split_load(*, path: Path, folders: Sequence[Path] | None = None) -> dict:
    """Read a split file. `folders` (matched by folder name) relocates the data; else stored paths."""
    payload = json.loads(Path(path).read_text())
    if payload.get("format") != SPLIT_FORMAT:
        raise ValueError(f"{path}: unknown split file format {payload.get('format')!r}")
    where = dict(payload["folders"])
    for folder in folders or []:
        if Path(folder).name in where:
            where[Path(folder).name] = str(folder)
    missing = set(payload["folders"]) - {Path(f).name for f in folders} if folders else set()
    if missing:
        raise ValueError(f"split {path} needs data folders named {', '.join(sorted(missing))}")
    payload["folders"] = where
    payload["splits"] = {
        name: [
            Sample(path=Path(where[folder]) / rel, label=int(label), scenery=scenery, group=group, source=source)
            for folder, rel, label, scenery, group, source in rows
        ]
        for name, rows in payload["splits"].items()
    }
    return payload


def split_prepare(
    *,
    directory: Path,
    folders: Sequence[Path] | None = None,
    split_file: Path | None = None,
    seed: int = 0,
    holdout_sources: Sequence[str] | None = None,
) -> dict:
    """The split a new bundle trains on, saved as `directory/split.json`: another bundle's `split_file`
    (so reports compare like with like; `folders` relocate its data) or a new seeded split of `folders`."""
    if split_file is not None:
        split = split_load(path=split_file, folders=folders)
    elif folders:
        split = split_make(folders=folders, seed=seed, holdout_sources=holdout_sources)
    else:
        raise ValueError("give data folders or a split file")
    split_save(split, path=Path(directory) / "split.json")
    return split
