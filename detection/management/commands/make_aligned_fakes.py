"""manage.py make_aligned_fakes: thin wrapper over detection.core.aligned.pairs_make.

The pairs cached for training were made with:
    python -u manage.py make_aligned_fakes --out /work/cache/aligned --threads 1
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Write every genuine photo of the shared sets beside its round trip through a tiny autoencoder "
        "(same crop, same JPEG), with a groups.csv that keeps each pair in one group: a data folder."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="output data folder (outside git)")
        parser.add_argument("--data", nargs="+", type=Path, help="data folders (default: the shared sets)")
        parser.add_argument("--all-decoders", action="store_true", help="every photo through all five decoders")
        parser.add_argument("--limit", type=int, help="only the first N photos of the (fixed, shuffled) plan")
        parser.add_argument("--threads", type=int, default=1)

    def handle(self, *args, **options) -> None:
        import torch

        from detection.core.aligned import ALIGNED_SETS, DATASETS_DIR, pairs_make

        torch.set_num_threads(options["threads"])
        folders = options["data"] or [DATASETS_DIR / name for name in ALIGNED_SETS]
        try:
            report = pairs_make(
                out=options["out"],
                folders=folders,
                all_decoders=options["all_decoders"],
                limit=options["limit"],
                progress=self.stdout.write,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        seconds = report["seconds"]
        self.stdout.write(
            f"{report['photos']} photos, {report['written']} files written, {report['too_small']} too small; "
            f"groups.csv has {report['rows']} rows"
        )
        if seconds:
            self.stdout.write(f"{sum(seconds) / len(seconds):.2f} s per photo that needed work ({len(seconds)})")
        for decoder, values in sorted(report["psnr"].items()):
            self.stdout.write(f"{decoder}: mean PSNR {sum(values) / len(values):.2f} dB over {len(values)} round trips")
