"""manage.py detect: score image files or folders (recursively) with a trained detector."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Print the AI probability and verdict of each image; unreadable files give an error line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--model", default=None, help="bundle name (default: settings.DETECTOR_DEFAULT_MODEL)")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--device", default=None)

    def handle(self, *args, **options) -> None:
        from detection.core.files import NoTrainedWeights
        from detection.core.loading import detector_open
        from detection.core.scan import paths_detect
        from detection.core.selftest import golden_check

        name = options["model"] or settings.DETECTOR_DEFAULT_MODEL
        try:
            # One model, so its framework runs in this process (a Keras bundle loads TensorFlow, never torch).
            weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
            detector = detector_open(
                weights_dir=weights_dir, name=name, device=options["device"] or settings.DETECTOR_DEVICE
            )
            golden_check(directory=weights_dir / name, detector=detector)
        except NoTrainedWeights as exc:  # SelfTestFailed included
            raise CommandError(str(exc)) from exc
        for record in paths_detect(detector=detector, paths=options["paths"]):
            if options["json"]:
                self.stdout.write(json.dumps(record))
            elif "error" in record:
                self.stderr.write(f"{record['path']}\terror: {record['error']}")
            else:
                self.stdout.write(f"{record['path']}\t{record['ai_probability']:.4f}\t{record['verdict']}")
