"""manage.py detector_selftest: check that each shipped model reproduces its golden outputs on this machine."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Load each model (or those named) as a worker would, compare its outputs with its golden outputs and "
        "record the result for the settings page and /health/; exit 1 on a refusal."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", action="append", help="bundle name (repeatable; default: every shipped one)")
        parser.add_argument("--no-record", action="store_true", help="print only (for a check before `migrate`)")

    def handle(self, *args, **options) -> None:
        from detection.selectors import model_names_available
        from detection.services import detector_selftest_run

        results = detector_selftest_run(
            model_names=options["model"] or model_names_available(), record=not options["no_record"]
        )
        for result in results:
            if result.passed:
                self.stdout.write(f"{result.model_name}: self-test passed")
            else:
                self.stderr.write(self.style.ERROR(f"{result.model_name}: REFUSED: {result.detail}"))
        refused = [result.model_name for result in results if not result.passed]
        if refused:
            raise CommandError(f"{len(refused)} model(s) refused on this machine: {', '.join(refused)}")
