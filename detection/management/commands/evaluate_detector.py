"""manage.py evaluate_detector: thin wrapper over detection.core.evaluate.detector_evaluate."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Evaluate a trained detector on its saved split; writes report.json and report.html beside the weights."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, help="bundle name under DETECTOR_WEIGHTS_DIR")
        parser.add_argument("--data", required=True, nargs="+", type=Path, help="the data folders it was trained on")
        parser.add_argument("--no-robustness", action="store_true", help="skip the robustness table (faster)")
        parser.add_argument(
            "--robustness-samples",
            type=int,
            default=None,
            help="robustness table on a seeded subset of this many test images (slow models)",
        )
        parser.add_argument("--threads", type=int, default=2)

    def handle(self, *args, **options) -> None:
        from detection.core.evaluate import detector_evaluate
        from detection.core.files import NoTrainedWeights

        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        try:
            report = detector_evaluate(
                weights_dir=weights_dir,
                name=options["model"],
                folders=options["data"],
                robustness=not options["no_robustness"],
                robustness_samples=options["robustness_samples"],
                threads=options["threads"],
            )
        except (NoTrainedWeights, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"targets: {report['targets']}")
        self.stdout.write(self.style.SUCCESS(f"wrote {weights_dir / options['model'] / 'report.html'}"))
