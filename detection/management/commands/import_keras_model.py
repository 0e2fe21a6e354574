"""manage.py import_keras_model: a Keras binary image classifier from elsewhere becomes a selectable bundle.

TensorFlow runs in this process, which never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Validate a .keras binary image classifier (one sigmoid or two softmax outputs, one image input), "
        "record its input size and scaling, calibrate its thresholds on a split's validation part and make "
        "it selectable as a `keras` bundle."
    )

    def add_arguments(self, parser) -> None:
        from detection.core.preprocess import INPUT_SCALES

        parser.add_argument("path", type=Path, help="the .keras file")
        parser.add_argument("--name", required=True, help="bundle name under DETECTOR_WEIGHTS_DIR")
        parser.add_argument("--split", required=True, type=Path, help="split file to calibrate on (its val part)")
        parser.add_argument("--data", nargs="+", type=Path, help="where the split's data folders live now")
        scales = "; ".join(f"{key}: {meaning}" for key, meaning in INPUT_SCALES.items())
        parser.add_argument(
            "--input-scale",
            choices=sorted(INPUT_SCALES),
            default="imagenet",
            help=f"how the model expects pixels: {scales}",
        )
        parser.add_argument("--image-size", type=int, help="input size, for a model that takes any size")
        parser.add_argument("--ai-index", type=int, help="which of two softmax outputs is 'AI-generated' (default 1)")
        parser.add_argument("--false-flag", type=float, default=0.02, help="target false-flag rate on real photos")

    def handle(self, *args, **options) -> None:
        name = options["name"]
        if not name.replace("_", "").replace("-", "").isalnum():
            raise CommandError(f"{name!r}: a model name takes letters, digits, '-' and '_' only")
        if not options["path"].is_file():
            raise CommandError(f"{options['path']} does not exist")
        from detection.core.data import split_load
        from detection.core.keras.importer import keras_model_import
        from detection.core.loading import golden_make

        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        try:
            split = split_load(path=options["split"], folders=options["data"])
            card = keras_model_import(
                source=options["path"],
                name=name,
                weights_dir=weights_dir,
                val=split["splits"]["val"],
                input_scale=options["input_scale"],
                image_size=options["image_size"],
                ai_index=options["ai_index"],
                false_flag=options["false_flag"],
                cache_dir=Path(settings.BASE_DIR) / "runs" / "cache",
                data_fingerprint=split["fingerprint"],
                split_file="split.json",
            )
        except (FileNotFoundError, ValueError) as exc:  # InvalidKerasModel is a ValueError
            raise CommandError(f"{options['path'].name} refused: {exc}") from exc
        (weights_dir / name / "split.json").write_text(options["split"].read_text())
        golden_make(weights_dir=weights_dir, name=name)
        val, spec = card.metrics["val"], card.keras
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {name} ({card.image_size} px, {spec['output']}, scale {spec['input_scale']}, "
                f"Grad-CAM {card.gradcam_default_layer}); thresholds {card.thresholds.low:.4g}/"
                f"{card.thresholds.high:.4g}; validation: false flags {val['fp']}/{val['fp'] + val['tn']}, "
                f"recall {val['recall']}"
            )
        )
