"""manage.py statistics_rebuild: thin wrapper over moderation.counters.statistics_counts_rebuild."""

import time

from django.core.management.base import BaseCommand

from moderation.counters import statistics_counts_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the statistics counters from every submission and detection: once after the migration that "
        "adds them, and whenever rows were written around the services (an import, a fix by hand)."
    )

    def handle(self, *args, **options) -> None:
        started = time.perf_counter()
        counted = statistics_counts_rebuild()
        self.stdout.write(f"Counted {counted:,} detections in {time.perf_counter() - started:.1f} s.")
