"""manage.py export_decisions: thin wrapper over moderation.exports.decisions_export."""

from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.errors import DomainError
from moderation.exports import decisions_export


class Command(BaseCommand):
    help = (
        "Write finally decided originals as {real,ai_generated}/{scenery}/ with a groups.csv (one group per "
        "contributor), a data folder train_detector, train_clip_probe and compare_detectors --decided read."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", required=True, type=date.fromisoformat, help="decided on or after (YYYY-MM-DD)")
        parser.add_argument("destination", type=Path, help="a missing or empty folder")

    def handle(self, *args, **options) -> None:
        try:
            result = decisions_export(since=options["since"], destination=options["destination"])
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        for sha256 in result.conflicting:
            self.stdout.write(self.style.WARNING(f"left out: identical bytes {sha256[:12]} approved and rejected"))
        counts = ", ".join(f"{n} {label}" for label, n in result.written.items())
        self.stdout.write(self.style.SUCCESS(f"{options['destination']}: {counts}, {result.groups} contributor groups"))
