"""manage.py train_scenery: the scenery suggestion head on the default detector's CLIP embeddings.

The shipped head (detection/weights/scenery/) was made with:
    python manage.py train_scenery --data ../shared/datasets/landscapes \
        --other ../shared/datasets/real-diverse ../shared/datasets/real-stock \
        --other-sources imagenet_samples clothing_phone_photos pexels_pets --cache-dir /work/cache/scenery
"""

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detection.core.card import ModelCard
from detection.selectors import model_card_get


def _encoder_find(*, model: str) -> tuple[ModelCard, Path]:
    """The card of the CLIP probe `model` and its encoder's file; CommandError where there is none."""
    card = model_card_get(name=model)
    if card is None or not card.encoder_file:
        raise CommandError(f"{model} is no CLIP probe with an encoder")
    encoder_path = Path(settings.DETECTOR_WEIGHTS_DIR) / model / card.encoder_file
    if not encoder_path.is_file():
        raise CommandError(f"no {encoder_path}: run ./dev once (it installs the encoder)")
    return card, encoder_path


def _parts_draw(
    split: dict, *, other_folders: list[Path], wanted: set[str], shares: dict[str, float], seed: int
) -> dict[str, list]:
    """The split's parts, test first, with only the `wanted` sources of the other folders (all when none is
    named), each a seeded draw of its share."""

    def kept(sample) -> bool:
        in_other = any(sample.path.is_relative_to(folder) for folder in other_folders)
        return not in_other or not wanted or sample.source in wanted

    rng = random.Random(seed)
    parts = {
        name: [s for s in sorted(split["splits"][name], key=lambda s: str(s.path)) if kept(s)]
        for name in ("test", "val", "train")
    }
    # One draw per image whatever the shares, so the test part stays the same when only the fit share changes.
    return {name: [s for s in samples if rng.random() < shares[name]] for name, samples in parts.items()}


def _embeddings_cache(
    encoder, parts: dict[str, list], *, folders: list[Path], image_size: int, cache_dir: Path
) -> dict:
    """Each image's embedding by path, embedded (and cached) per split part and data folder: a run stopped
    half-way keeps what it finished."""
    from detection.core.caches import embeddings_cache  # torch boundary

    embedding = {}
    for samples in parts.values():
        for folder in folders:
            members = [s for s in samples if s.path.is_relative_to(folder)]
            if members:
                vectors = embeddings_cache(encoder, members, image_size=image_size, cache_dir=cache_dir)
                embedding.update(zip((s.path for s in members), vectors, strict=True))
    return embedding


def _arrays_make(parts: dict[str, list], *, embedding: dict, classes: list[str]) -> dict[str, tuple]:
    """Per part, the embeddings stacked and their scenery class indexes."""
    from detection.core.scenery import labels_index

    arrays = {}
    for name, samples in parts.items():
        x = np.stack([embedding[s.path] for s in samples])
        arrays[name] = (x, labels_index([s.scenery for s in samples], classes=classes))
    return arrays


def _card_make(*, model: str, image_size: int, data: dict, fit: dict, metrics: dict, started: float) -> dict:
    from detection.core.clip_probe import ENCODER_SHA256

    return {
        "version": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "encoder_model": model,
        "encoder_sha256": ENCODER_SHA256,
        "image_size": image_size,
        "data": data,
        "fit": fit,
        "metrics": metrics,
        "seconds": round(time.monotonic() - started, 1),
    }


class Command(BaseCommand):
    help = "Fit the scenery suggestion head on a grouped split; accuracy per scenery on its test part."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", nargs="+", type=Path, required=True, help="folders of the six sceneries")
        parser.add_argument("--other", nargs="*", type=Path, default=[], help="folders of photos of other subjects")
        parser.add_argument(
            "--other-sources",
            nargs="*",
            default=[],
            help="take only these sources of the --other folders (some sources there are streets or buildings)",
        )
        parser.add_argument("--model", default=settings.DETECTOR_DEFAULT_MODEL, help="the CLIP probe whose encoder")
        parser.add_argument("--out", type=Path, default=Path(settings.SCENERY_HEAD_DIR))
        parser.add_argument("--cache-dir", type=Path, default=Path(settings.BASE_DIR) / "runs" / "cache")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--sample", type=float, default=1.0, help="share of each split part to use (seeded), to fit on fewer CPUs"
        )
        parser.add_argument("--fit-sample", type=float, help="share of the train and val parts (default: --sample)")
        parser.add_argument("--threads", type=int, default=2)

    def handle(self, *args, **options) -> None:
        from detection.core.clip_probe import ClipEncoder  # torch boundary
        from detection.core.data import split_make
        from detection.core.scenery import OTHER, SCENERIES, accuracy_per_scenery, head_save, scenery_fit

        started = time.monotonic()
        card, encoder_path = _encoder_find(model=options["model"])
        other_folders = [Path(folder) for folder in options["other"]]
        try:
            split = split_make(folders=[*options["data"], *other_folders], seed=options["seed"], holdout_sources=[])
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        wanted = set(options["other_sources"])
        fit_share = options["fit_sample"] or options["sample"]
        shares = {"test": options["sample"], "val": fit_share, "train": fit_share}
        parts = _parts_draw(split, other_folders=other_folders, wanted=wanted, shares=shares, seed=options["seed"])
        encoder = ClipEncoder(path=encoder_path, threads=options["threads"])
        options["cache_dir"].mkdir(parents=True, exist_ok=True)
        embedding = _embeddings_cache(
            encoder,
            parts,
            folders=[*options["data"], *other_folders],
            image_size=int(card.image_size),
            cache_dir=options["cache_dir"],
        )
        classes = [*SCENERIES, *([OTHER] if any(s.scenery not in SCENERIES for s in parts["train"]) else [])]
        arrays = _arrays_make(parts, embedding=embedding, classes=classes)
        head, fit = scenery_fit(
            train_x=arrays["train"][0],
            train_y=arrays["train"][1],
            val_x=arrays["val"][0],
            val_y=arrays["val"][1],
            classes=classes,
        )
        metrics = {
            name: accuracy_per_scenery(head, arrays[name][0], [s.scenery for s in parts[name]])
            for name in ("val", "test")
        }
        data = {
            "folders": [Path(folder).name for folder in options["data"]],
            "other_folders": [folder.name for folder in other_folders],
            "other_sources": sorted(wanted),
            "seed": options["seed"],
            "sample": shares,
            "split": "grouped, stratified by label and scenery, 60/20/20 (detection.core.data.split_make)",
            "images": {name: len(samples) for name, samples in parts.items()},
        }
        head_save(
            directory=options["out"],
            head=head,
            card=_card_make(
                model=options["model"],
                image_size=int(card.image_size),
                data=data,
                fit=fit,
                metrics=metrics,
                started=started,
            ),
        )
        self.stdout.write(f"scenery head in {options['out']}: threshold {head.threshold:.3f}, test {metrics['test']}")
