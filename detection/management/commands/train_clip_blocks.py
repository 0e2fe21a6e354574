"""manage.py train_clip_blocks: ship the CLIP-blocks detector with out-of-source thresholds (detection.core.study)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detection.management.commands.crossval_detector import protocol_arguments_add, study_arguments_add


class Command(BaseCommand):
    help = (
        "Train the probe on several CLIP blocks over a global view and crops, on every shared set, with thresholds "
        "chosen on leave-source-out scores and those figures in its card; the seed test split stays out."
    )

    def add_arguments(self, parser) -> None:
        from detection.core.study import PRESETS

        parser.add_argument("--name", default="clip_blocks")
        parser.add_argument("--preset", choices=sorted(PRESETS), default="+l2x100")
        study_arguments_add(parser)
        parser.add_argument(
            "--test-split", type=Path, help="a split file whose test part is kept out of training, to evaluate on"
        )
        protocol_arguments_add(parser)
        parser.add_argument("--scores", type=Path, help="also write the out-of-source scores as CSV here")

    def handle(self, *args, **options) -> None:
        import torch

        from detection.clip_encoder import encoder_installed
        from detection.core.data import split_load
        from detection.core.loading import golden_make
        from detection.core.study import PRESETS, clip_blocks_train, scores_csv_write, study_data

        torch.set_num_threads(options["threads"])
        weights_dir = Path(settings.DETECTOR_WEIGHTS_DIR)
        try:
            encoder = encoder_installed(weights_dir=weights_dir)
            test_split = None
            if options["test_split"]:
                test_split = split_load(path=options["test_split"], folders=options["data"])
            data = study_data(
                folders=options["data"],
                encoder_path=encoder,
                cache_dir=options["cache_dir"],
                crops=options["crops"],
                per_unit=options["per_unit"],
                threads=options["threads"],
                train_only_folders=options["aligned"],
                aligned_decoders=options["aligned_decoders"],
                reshot_copies=options["reshot_copies"],
                scales=PRESETS[options["preset"]].scales,
            )
            trained = clip_blocks_train(
                data,
                preset=options["preset"],
                out_dir=weights_dir,
                name=options["name"],
                encoder_path=encoder,
                crops=options["crops"],
                k=options["k"],
                false_flag=options["false_flag"],
                confidence=options["confidence"],
                collection_minimum=options["collection_minimum"],
                test_split=test_split,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        golden_make(weights_dir=weights_dir, name=options["name"])
        if options["scores"]:
            scores_csv_write(options["scores"], trained["protocol"], trained["result"])
        card = trained["card"]
        lso = card.leave_source_out
        self.stdout.write(
            f"{options['name']}: out-of-source thresholds {card.thresholds.low:.3f} / "
            f"{card.thresholds.high:.3f}; held-out collections: false flags mean "
            f"{lso['false_flags_mean']:.1%}, worst {lso['false_flags_worst']:.1%} ({lso['worst_collection']}); "
            f"held-out generators: recall mean {lso['recall_mean']:.1%}, worst {lso['recall_worst']:.1%}"
        )
