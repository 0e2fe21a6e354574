"""manage.py export_onnx: write <weights>/<name>/model.onnx for the onnxruntime scoring path."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Export a trained detector bundle to ONNX (model.onnx beside its weights)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, help="bundle name under DETECTOR_WEIGHTS_DIR")

    def handle(self, *args, **options) -> None:
        from detection.core.bundle import MODEL_FILE
        from detection.core.onnx_engine import onnx_export

        directory = Path(settings.DETECTOR_WEIGHTS_DIR) / options["model"]
        if not (directory / MODEL_FILE).is_file():
            raise CommandError(f"no trained weights for {options['model']}")
        self.stdout.write(self.style.SUCCESS(f"wrote {onnx_export(directory=directory)}"))
