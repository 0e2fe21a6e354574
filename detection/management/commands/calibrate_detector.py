"""manage.py calibrate_detector: thin wrapper over detection.core.evaluate.detector_calibrate."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Choose a bundle's thresholds afresh on its validation split for a target false-flag rate, "
        "held with the given confidence, and write them into its model card."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, help="bundle name under DETECTOR_WEIGHTS_DIR")
        parser.add_argument("--data", nargs="+", type=Path, help="where the split's data folders live now")
        parser.add_argument("--false-flag", type=float, default=0.02, help="target false-flag rate on real photos")
        parser.add_argument(
            "--confidence",
            type=float,
            default=0.95,
            help="probability that the rate on new photos stays under target (0: point estimate)",
        )
        parser.add_argument("--threads", type=int, default=2)

    def handle(self, *args, **options) -> None:
        from detection.core.evaluate import detector_calibrate
        from detection.core.files import NoTrainedWeights

        try:
            card = detector_calibrate(
                weights_dir=Path(settings.DETECTOR_WEIGHTS_DIR),
                name=options["model"],
                folders=options["data"],
                false_flag=options["false_flag"],
                confidence=options["confidence"],
                threads=options["threads"],
            )
        except (NoTrainedWeights, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        val = card.metrics["val"]
        self.stdout.write(
            self.style.SUCCESS(
                f"{options['model']}: thresholds {card.thresholds.to_dict()}; validation at high: false flags "
                f"{val['fp']}/{val['fp'] + val['tn']}, recall {val['recall']:.4f}, F1 {val['f1']:.4f}"
            )
        )
