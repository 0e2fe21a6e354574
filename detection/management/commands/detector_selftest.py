"""manage.py detector_selftest: check that each shipped model reproduces its golden outputs on this machine."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Load each model (or those named) and compare its outputs with its golden outputs; exit 1 on a refusal."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", action="append", help="bundle name (repeatable; default: every shipped one)")

    def handle(self, *args, **options) -> None:
        from detection.core.files import NoTrainedWeights
        from detection.core.selftest import detector_load_verified
        from detection.selectors import model_card_get, model_names_available

        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        refused = []
        for name in options["model"] or model_names_available():
            if (model_card_get(name=name) or {}).get("arch") == "keras":  # golden outputs are PyTorch-side so far
                continue
            try:
                detector_load_verified(weights_dir=weights_dir, name=name)
            except NoTrainedWeights as exc:  # SelfTestFailed included
                refused.append(name)
                self.stderr.write(self.style.ERROR(f"{name}: REFUSED: {exc}"))
            else:
                self.stdout.write(f"{name}: self-test passed")
        if refused:
            raise CommandError(f"{len(refused)} model(s) refused on this machine: {', '.join(refused)}")
