"""manage.py compare_detectors: thin wrapper over detection.core.evaluate.detectors_compare."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "False-flag rate of several bundles at equal recall, on their shared seed test split or, with --decided, "
        "on the portal's decided uploads (an export_decisions folder), the active model always among them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--models", required=True, nargs="+", help="bundle names under DETECTOR_WEIGHTS_DIR")
        parser.add_argument("--recall", nargs="+", type=float, default=[0.9, 0.95, 0.99])
        parser.add_argument("--data", nargs="+", type=Path, help="where the split's data folders live now")
        parser.add_argument(
            "--decided",
            type=Path,
            help="an export_decisions folder: compare on these decided uploads instead, with the active model added",
        )
        parser.add_argument("--threads", type=int, default=2)

    def handle(self, *args, **options) -> None:
        import torch

        from detection.core.evaluate import detectors_compare
        from detection.core.inference import NoTrainedWeights

        torch.set_num_threads(options["threads"])
        names, samples = options["models"], None
        try:
            if options["decided"]:
                from detection.core.data import folder_scan
                from detection.selectors import model_active_name

                # A new version is judged against what runs now, on the same decisions.
                names = list(dict.fromkeys([model_active_name(), *names]))
                samples = folder_scan(folder=options["decided"])
            table = detectors_compare(
                weights_dir=Path(settings.DETECTOR_WEIGHTS_DIR),
                names=names,
                recalls=options["recall"],
                folders=options["data"],
                samples=samples,
            )
        except (NoTrainedWeights, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("false flags at recall " + " / ".join(f"{r:g}" for r in options["recall"]))
        for name, rates in table.items():
            cells = " / ".join("n/a" if rate is None else f"{rate:.2%}" for rate in rates.values())
            self.stdout.write(f"{name}: {cells}")
