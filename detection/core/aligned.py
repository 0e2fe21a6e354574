"""Content-aligned pairs: each genuine photo of the data folders beside its round trip through a tiny
autoencoder (`tae`), written as one data folder that `data.folder_scan` reads.

Both sides of a pair get the same crop (sides to multiples of 8) and the same JPEG encoding, so only the
decoder's trace tells them apart; both keep the photo's group, so a grouped split never separates them.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from detection.core.data import LABEL_NAMES, Sample, folder_scan, roundtrip_source
from detection.core.preprocess import CANONICAL_JPEG_QUALITY, image_decode
from detection.core.tae import DECODERS, TAE_DIR, crop_box, psnr, roundtrip

# The shared sets that hold genuine photos; their AI images are left alone.
ALIGNED_SETS = ("real-diverse", "real-stock", "ai-older", "ai-diverse", "landscapes")
DATASETS_DIR = TAE_DIR.parents[1] / "datasets"
COLUMNS = ("path", "label", "scenery", "group", "source", "generator")

README = """# Content-aligned pairs (made by `manage.py make_aligned_fakes`; never commit)

Every genuine photo of the data folders {folders} beside its round trip (encode, then decode) through a
tiny distilled twin of a generator's autoencoder (`../shared/generators/tae`, MIT): the pair shows the same
content and differs only in the decoder's trace.

- `real/<source>/<name>.jpg`: the photo, sides centre-cropped to multiples of 8, JPEG quality {quality}.
- `ai_generated/tae_<decoder>/<name>.jpg`: its round trip through `<decoder>` ({decoders}), the same crop,
  the same JPEG encoding, so size and codec carry no signal.
- `groups.csv` (`{columns}`): both sides of a pair share the photo's group, prefixed with its set's name;
  the photo's source is its original collection, the round trip's source and generator are
  `tae_<decoder>`, so each decoder is a source of its own in a leave-source-out protocol.
- One decoder per photo, chosen from its group (`--all-decoders`: all five).

The photos keep the terms of the sets they come from (see each set's README). Rebuild with
`python manage.py make_aligned_fakes --out <this folder>`; pairs already written are skipped.
"""


@dataclass(frozen=True)
class Pair:
    sample: Sample  # the genuine photo
    name: str  # file stem on both sides
    decoders: tuple[str, ...]

    @property
    def real_rel(self) -> str:
        return f"real/{self.sample.source}/{self.name}.jpg"

    @staticmethod
    def fake_rel(name: str, decoder: str) -> str:
        return f"ai_generated/{roundtrip_source(decoder)}/{name}.jpg"


def pair_key(path: Path) -> tuple[Path, str]:
    """What the sides of one pair share in an aligned folder (`Pair.real_rel`, `Pair.fake_rel`): the folder
    and the file name."""
    return path.parents[2], path.stem


def decoder_for_group(group: str) -> str:
    """The one decoder a group's photos go through by default: spread evenly, the same on every run."""
    return DECODERS[int(hashlib.sha256(group.encode()).hexdigest(), 16) % len(DECODERS)]


def pairs_plan(*, folders: Sequence[Path], all_decoders: bool = False) -> list[Pair]:
    """Every genuine photo of `folders` with its output name and decoders, in a fixed shuffled order so a
    partial run (or `limit`) covers every set and decoder alike."""
    pairs: dict[str, Pair] = {}
    for folder in folders:
        for sample in folder_scan(folder=folder):
            if LABEL_NAMES[sample.label] != "real":
                continue
            name = f"{sample.source}_{sample.path.stem}"
            if name in pairs:
                raise ValueError(f"{pairs[name].sample.path} and {sample.path} would both be written as {name}")
            decoders = DECODERS if all_decoders else (decoder_for_group(sample.group),)
            pairs[name] = Pair(sample=sample, name=name, decoders=decoders)
    return sorted(pairs.values(), key=lambda pair: hashlib.sha256(pair.name.encode()).hexdigest())


def _jpeg_write(image: Image.Image, path: Path) -> None:
    """The one encoding both sides of a pair get; written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    image.save(partial, format="JPEG", quality=CANONICAL_JPEG_QUALITY)
    partial.replace(path)


def groups_write(*, out: Path, pairs: Sequence[Pair]) -> int:
    """groups.csv for every pair file present in `out` (whatever run wrote it); returns the row count."""
    rows = []
    for pair in pairs:
        if not (out / pair.real_rel).is_file():
            continue
        sample = pair.sample
        rows.append([pair.real_rel, "real", sample.scenery, sample.group, sample.source, ""])
        for decoder in DECODERS:
            rel = Pair.fake_rel(pair.name, decoder)
            if (out / rel).is_file():
                source = roundtrip_source(decoder)
                rows.append([rel, "ai_generated", sample.scenery, sample.group, source, source])
    partial = out / "groups.csv.partial"
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    partial.replace(out / "groups.csv")
    return len(rows)


def _pair_write(pair: Pair, *, missing: Sequence[str], out: Path, tae_dir: Path, report: dict) -> None:
    began = time.monotonic()
    image = image_decode(pair.sample.path.read_bytes())
    try:
        photo = image.crop(crop_box(*image.size))
    except ValueError:
        report["too_small"] += 1
        return
    pixels = np.asarray(photo)
    reference = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)
    for decoder in missing:
        trip = roundtrip(pixels, decoder, directory=tae_dir)
        report["psnr"][decoder].append(psnr(reference, trip))
        array = trip.mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()
        _jpeg_write(Image.fromarray(array), out / Pair.fake_rel(pair.name, decoder))
        report["written"] += 1
    # The photo last: a pair counts as done only once its round trips are on disk.
    if not (out / pair.real_rel).is_file():
        _jpeg_write(photo, out / pair.real_rel)
        report["written"] += 1
    report["seconds"].append(time.monotonic() - began)


def _progress_line(report: dict, *, done: int, total: int, elapsed: float) -> str:
    seconds = report["seconds"]
    means = ", ".join(f"{name} {np.mean(values):.2f}" for name, values in sorted(report["psnr"].items()))
    per_photo = f"{np.mean(seconds):.2f} s per photo worked on" if seconds else "nothing to do yet"
    return (
        f"{done}/{total} photos, {elapsed:.0f} s, about {elapsed / done * (total - done):.0f} s left; "
        f"{per_photo}; mean PSNR (dB) so far: {means or '-'}"
    )


def pairs_make(
    *,
    out: Path,
    folders: Sequence[Path],
    all_decoders: bool = False,
    limit: int | None = None,
    tae_dir: Path = TAE_DIR,
    progress: Callable[[str], None] | None = None,
    report_every: int = 100,
) -> dict:
    """Write the pairs of `folders` into `out` (skipping files already there), its groups.csv and README.
    Every `report_every` photos groups.csv is rewritten (an interrupted run leaves a usable folder) and
    `progress` gets a line. Returns what this run did: photos seen, files written, PSNR (dB) of each new
    round trip per decoder and seconds per photo that needed work."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(
        README.format(
            folders=", ".join(f"`{Path(folder).name}`" for folder in folders),
            quality=CANONICAL_JPEG_QUALITY,
            decoders=", ".join(DECODERS),
            columns=",".join(COLUMNS),
        )
    )
    plan = pairs_plan(folders=folders, all_decoders=all_decoders)
    todo = plan[:limit] if limit is not None else plan
    report: dict = {"photos": len(todo), "written": 0, "too_small": 0, "psnr": defaultdict(list), "seconds": []}
    started = time.monotonic()
    for index, pair in enumerate(todo, start=1):
        missing = [d for d in pair.decoders if not (out / Pair.fake_rel(pair.name, d)).is_file()]
        if missing or not (out / pair.real_rel).is_file():
            _pair_write(pair, missing=missing, out=out, tae_dir=tae_dir, report=report)
        if index % report_every == 0:
            groups_write(out=out, pairs=plan)
            if progress is not None:
                progress(_progress_line(report, done=index, total=len(todo), elapsed=time.monotonic() - started))
    report["rows"] = groups_write(out=out, pairs=plan)
    report["psnr"] = dict(report["psnr"])
    return report
