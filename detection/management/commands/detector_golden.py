"""manage.py detector_golden: (re)make a bundle's golden outputs, the reference its self-test compares with."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Compute a model's outputs on the self-test's fixed inputs and save them as its golden.json. Run it "
        "only on a machine where the model is known to compute correctly (its evaluation reproduces)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", action="append", required=True, help="bundle name (repeatable)")

    def handle(self, *args, **options) -> None:
        from detection.core.files import NoTrainedWeights
        from detection.core.loading import golden_make

        for name in options["model"]:
            try:
                # Keras bundles in a TensorFlow child: one run may name bundles of both frameworks.
                golden = golden_make(weights_dir=Path(settings.DETECTOR_WEIGHTS_DIR), name=name, isolated=True)
            except NoTrainedWeights as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{name}: golden outputs written, made on {golden['made_on']}")
