"""manage.py crossval_detector: the leave-source-out protocol over the CLIP-feature levers (detection.core.study),
or a CNN fine-tuned per fold (detection.core.cnn_study)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

if TYPE_CHECKING:
    import numpy as np

SHARED = Path(settings.BASE_DIR).parent / "shared" / "datasets"


# An option that means nothing without another: (option, the other, what to say).
OPTIONS_NEEDING = (
    ("pairs_ablation", "aligned", "--pairs-ablation needs content-aligned pairs: give --aligned FOLDER"),
    ("pairs_decoders", "pairs_ablation", "--pairs-decoders picks --pairs-ablation rows: give --pairs-ablation"),
    ("reshot_ablation", "reshot_copies", "--reshot-ablation needs re-shot copies: give --reshot-copies N"),
    ("hidden_l2", "hidden_rows", "--hidden-l2 sets the penalties of the --hidden-rows: give --hidden-rows WIDTH"),
    ("fuse_with", "cnn", "--fuse-with fuses a --cnn run with another detector's scores: give --cnn ARCH"),
    ("cnn_native_crops", "cnn", "--cnn-native-crops is how a --cnn run looks at images: give --cnn ARCH"),
)


def study_arguments_add(parser) -> None:
    """The data options the study's two commands share: the shared sets and content-aligned fakes."""
    from detection.core.tae import DECODERS

    parser.add_argument(
        "--data",
        nargs="+",
        type=Path,
        default=[SHARED / name for name in ("landscapes", "real-diverse", "real-stock", "ai-older", "ai-diverse")],
    )
    parser.add_argument(
        "--aligned", nargs="*", type=Path, default=[], help="make_aligned_fakes folders: training-only pairs"
    )
    parser.add_argument(
        "--aligned-decoders", nargs="+", choices=DECODERS, help="only these decoders' --aligned pairs (default: all)"
    )
    parser.add_argument(
        "--reshot-copies",
        type=int,
        default=0,
        help="training-only re-shot copies of each image (crop, colour, blur, noise, JPEG 30-95; both classes alike)",
    )
    parser.add_argument("--per-unit", type=int, default=500, help="at most this many images per source")
    parser.add_argument("--cache-dir", type=Path, default=Path(settings.BASE_DIR) / "var" / "cache")


def protocol_arguments_add(parser) -> None:
    """The protocol and calibration options the study's two commands share."""
    parser.add_argument("--k", type=int, default=5, help="folds")
    parser.add_argument("--crops", type=int, default=1)
    parser.add_argument("--false-flag", type=float, default=0.03, help="target per held-out collection")
    parser.add_argument("--confidence", type=float, default=0.0)
    parser.add_argument(
        "--collection-minimum", type=int, default=1, help="smaller collections bound the threshold only pooled"
    )
    parser.add_argument("--threads", type=int, default=2)


def rows_arguments_add(parser) -> None:
    """The rows that train the last preset again, one lever changed, on the very same folds."""
    from detection.core.study import PAIRS_ROWS

    parser.add_argument(
        "--pairs-ablation",
        action="store_true",
        help=(
            "then the last preset again without the --aligned pairs, with each decoder's alone and with all "
            "decoders' but one (--pairs-rows chooses which kinds)"
        ),
    )
    parser.add_argument(
        "--pairs-rows",
        nargs="+",
        choices=PAIRS_ROWS,
        default=list(PAIRS_ROWS),
        help="only these kinds of --pairs-ablation row",
    )
    parser.add_argument(
        "--pairs-decoders",
        nargs="+",
        default=[],
        metavar="DECODER",
        help="the per-decoder --pairs-ablation rows (alone, all-but) only for these decoders (taesd, taef1...)",
    )
    parser.add_argument(
        "--reshot-ablation", action="store_true", help="then the last preset again without the re-shot copies"
    )
    rows = (
        ("--l2-rows", float, "PENALTY", "with each of these L2 penalties (+l2x100's is 0.1)"),
        (
            "--worst-source-rows",
            float,
            "TEMPERATURE",
            "each class's loss a soft maximum of its sources' at each temperature (group DRO; large: their mean)",
        ),
        ("--hidden-rows", int, "WIDTH", "with a hidden layer (ReLU) of each width before the logit"),
    )
    for flag, kind, metavar, what in rows:
        parser.add_argument(
            flag, nargs="+", type=kind, default=[], metavar=metavar, help=f"then the last preset again, {what}"
        )
    parser.add_argument(
        "--hidden-l2", nargs="+", type=float, default=[], metavar="PENALTY", help="the --hidden-rows' L2 penalties"
    )


class Command(BaseCommand):
    help = (
        "Hold out whole real collections and whole generator families fold by fold, train and calibrate on the "
        "rest only, and report false flags per held-out collection and recall per held-out generator."
    )

    def add_arguments(self, parser) -> None:
        from detection.core.nets import ARCHITECTURES
        from detection.core.study import PRESETS

        study_arguments_add(parser)
        protocol_arguments_add(parser)
        parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(PRESETS))
        parser.add_argument("--json", type=Path, help="write every preset's report here")
        parser.add_argument("--scores", type=Path, help="write the last preset's out-of-source scores (CSV)")
        parser.add_argument("--seed", type=int, default=0, help="deals equal-sized units to folds in another order")
        rows_arguments_add(parser)
        parser.add_argument(
            "--cnn",
            choices=ARCHITECTURES,
            help="instead of the CLIP probe, this CNN fine-tuned once per fold (ImageNet start where it has one; "
            "no inner folds, so ranking figures only)",
        )
        parser.add_argument("--cnn-epochs", type=int, default=4)
        parser.add_argument("--cnn-image-size", type=int, default=150)
        parser.add_argument(
            "--cnn-native-crops",
            type=int,
            default=0,
            help="with --cnn: train on crops of the working image at its own scale instead of the thumbnail, and "
            "score the mean of this many such crops per image",
        )
        parser.add_argument("--no-imagenet-start", action="store_true", help="--cnn from scratch")
        parser.add_argument(
            "--fuse-with", type=Path, help="with --cnn: another detector's --scores on the same folds, fused with it"
        )
        parser.add_argument(
            "--fuse",
            nargs=2,
            type=Path,
            metavar=("SCORES", "SCORES"),
            help="two detectors' --scores files on the same deal: each alone, their even mix and their stacked "
            "fusion, nothing trained",
        )

    def handle(self, *args, **options) -> None:
        for option, needed, message in OPTIONS_NEEDING:
            if options[option] and not options[needed]:
                raise CommandError(message)
        if options["fuse"] and options["cnn"]:
            raise CommandError("--fuse reads two finished --scores files: drop --cnn (or fuse it with --fuse-with)")
        if options["fuse"]:
            return self._fuse(options)
        import torch

        torch.set_num_threads(options["threads"])
        if options["cnn"]:
            return self._cnn(options)
        self._study(options)

    def _study(self, options: dict) -> None:
        from detection.clip_encoder import encoder_installed
        from detection.core.study import PRESETS, scores_csv_write, study_data, study_run

        try:
            data = study_data(
                folders=options["data"],
                scales=sorted({short for name in options["presets"] for short in PRESETS[name].scales}),
                encoder_path=encoder_installed(weights_dir=Path(settings.DETECTOR_WEIGHTS_DIR)),
                cache_dir=options["cache_dir"],
                crops=options["crops"],
                per_unit=options["per_unit"],
                train_only_folders=options["aligned"],
                aligned_decoders=options["aligned_decoders"],
                reshot_copies=options["reshot_copies"],
                threads=options["threads"],
                progress=lambda done, total: self.stderr.write(f"features {done}/{total}") if done % 240 < 6 else None,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(data.samples)} images, {options['k']} folds, target {options['false_flag']:.0%}")
        self.stdout.write(
            "preset | false flags mean / worst collection | to human | recall mean / worst "
            "generator | ROC AUC | recall at 1% / 3% false flags"
        )
        reports = {}
        runs = study_run(
            data,
            presets=options["presets"],
            k=options["k"],
            false_flag=options["false_flag"],
            confidence=options["confidence"],
            collection_minimum=options["collection_minimum"],
            seed=options["seed"],
            pairs_ablation=options["pairs_rows"] if options["pairs_ablation"] else (),
            pairs_decoders=options["pairs_decoders"],
            reshot_ablation=options["reshot_ablation"],
            penalties=options["l2_rows"],
            temperatures=options["worst_source_rows"],
            hidden_widths=options["hidden_rows"],
            hidden_penalties=options["hidden_l2"],
        )
        try:
            for name, result in runs:
                self._report(name, result["report"], reports, options)
                if options["scores"] and name == options["presets"][-1]:
                    scores_csv_write(options["scores"], result["protocol"], result["result"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _cnn(self, options: dict) -> None:
        import numpy as np

        from detection.core.cnn_study import cnn_fit_for, working_images
        from detection.core.crossval import Protocol, outer_scores, ranking_report
        from detection.core.starts import STARTS, start_fetch
        from detection.core.study import pairs_variants, scores_csv_read, scores_csv_write

        if options["reshot_copies"]:
            raise CommandError("--cnn re-shoots every training image already: drop --reshot-copies")
        try:
            samples, shorts, pairs = self._samples_with_pairs(options)
            protocol = Protocol(samples, k=options["k"], seed=options["seed"], train_only=pairs)
            other = scores_csv_read(options["fuse_with"], protocol) if options["fuse_with"] else None
            variants = pairs_variants(
                samples=samples,
                pairs=pairs,
                rows=options["pairs_rows"] if options["pairs_ablation"] else (),
                decoders=options["pairs_decoders"],
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        arch, native = options["cnn"], options["cnn_native_crops"] > 0
        label = f"{arch} on {options['cnn_native_crops']} native crops" if native else arch
        with_start = arch in STARTS and not options["no_imagenet_start"]
        out_dir = options["cache_dir"] / f"crossval_{arch}"
        fit = cnn_fit_for(
            samples,
            arch=arch,
            out_dir=out_dir,
            epochs=options["cnn_epochs"],
            image_size=options["cnn_image_size"],
            start_file=start_fetch(arch=arch, cache_dir=options["cache_dir"] / "starts") if with_start else None,
            images=working_images(samples, shorts=shorts, size=options["cnn_image_size"]) if native else None,
            test_crops=options["cnn_native_crops"],
            pairs=pairs,
        )
        self.stdout.write(
            f"{int((~pairs).sum())} images and {int(pairs.sum())} sides of content-aligned pairs, "
            f"{options['k']} folds; {arch} per fold, bundles in {out_dir}"
        )
        reports = {}
        for row, trainable in variants.items():
            row_scores = outer_scores(protocol, fit=lambda train, keep=trainable: fit(train[keep[train]]))
            self._ranking(f"{label}, {row}", ranking_report(protocol, row_scores), reports, options)
        if pairs.any():
            label += f" + {int(pairs.sum()) // 2} pairs"
        scores = outer_scores(protocol, fit=fit)
        self._ranking(label, ranking_report(protocol, scores), reports, options)
        if other is not None:
            self._ranking(options["fuse_with"].name, ranking_report(protocol, other), reports, options)
            self._fusions(protocol, (label, scores), (options["fuse_with"].name, other), reports, options)
        if options["scores"]:
            scores_csv_write(options["scores"], protocol, {"scores": scores, "high": np.full(len(scores), np.nan)})

    def _fuse(self, options: dict) -> None:
        """--fuse: two finished runs' out-of-source scores on the same images and folds, alone and fused."""
        from detection.core.crossval import Protocol, ranking_report
        from detection.core.study import scores_csv_read

        try:
            samples, _, pairs = self._samples_with_pairs(options)
            protocol = Protocol(samples, k=options["k"], seed=options["seed"], train_only=pairs)
            named = [(path.name, scores_csv_read(path, protocol)) for path in options["fuse"]]
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        reports = {}
        for name, scores in named:
            self._ranking(name, ranking_report(protocol, scores), reports, options)
        self._fusions(protocol, *named, reports, options)

    def _fusions(self, protocol, first: tuple, second: tuple, reports: dict, options: dict) -> None:
        """Two detectors' out-of-source scores as one: their standardised logits evenly mixed (nothing fitted),
        then with the weight stacked per fold on the other folds' scores (`crossval.fusion_stacked`)."""
        from detection.core.crossval import fusion_stacked, ranking_report
        from detection.core.metrics import scores_fused

        (first_name, first_scores), (second_name, second_scores) = first, second
        fused = scores_fused(first_scores, second_scores)
        self._ranking(f"{first_name} + {second_name}", ranking_report(protocol, fused), reports, options)
        stacked, weights = fusion_stacked(protocol, first_scores, second_scores)
        shares = " ".join(f"{weight:.2f}" for weight in weights.values())
        self._ranking(
            f"{first_name} + {second_name}, stacked ({second_name}'s weight per fold {shares})",
            {**ranking_report(protocol, stacked), "weights": weights},
            reports,
            options,
        )

    @staticmethod
    def _samples_with_pairs(options: dict) -> tuple[list, list[int], np.ndarray]:
        """The --cnn or --fuse run's samples (at most --per-unit per source) with the --aligned pairs' sides, each
        one's working short side: its folder's, as the CLIP study brings it (`features.folder_short_cap`), so size
        says nothing of the class; and per sample whether it is a side of a pair (training only)."""
        import numpy as np

        from detection.core.study import folder_namer, samples_scan

        samples, caps, pairs = samples_scan(
            folders=options["data"],
            train_only_folders=options["aligned"],
            per_unit=options["per_unit"],
            aligned_decoders=options["aligned_decoders"],
        )
        folder_of = folder_namer([*options["data"], *options["aligned"]])
        return samples, [caps[folder_of(sample)] for sample in samples], np.array(pairs, dtype=bool)

    def _ranking(self, name: str, report: dict, reports: dict, options: dict) -> None:
        # A fold that holds out one class only (generators alone) has no rate to quote.
        folds = " ".join(
            "-" if (rate := fold["recall_at_false_flags"]["0.03"]) is None else f"{rate:.1%}"
            for fold in report["folds"].values()
        )
        at = report["recall_at_false_flags"]
        self.stdout.write(
            f"{name} | ROC AUC {report['roc_auc']:.3f} | recall at 1% / 3% false flags {at['0.01']:.1%} / "
            f"{at['0.03']:.1%} | per held-out fold at 3%: {folds}"
        )
        self._json_write(name, report, reports, options)

    def _report(self, name: str, report: dict, reports: dict, options: dict) -> None:
        """One table row as soon as its preset is done, and the JSON rewritten with it."""
        at = report["recall_at_false_flags"]
        self.stdout.write(
            f"{name} | {report['false_flags_mean']:.1%} / {report['false_flags_worst']:.1%} | "
            f"{report['to_human_all']:.1%} | {report['recall_mean']:.1%} / {report['recall_worst']:.1%} | "
            f"{report['roc_auc']:.3f} | {at['0.01']:.1%} / {at['0.03']:.1%}"
        )
        self.stdout.flush()
        self._json_write(name, report, reports, options)

    @staticmethod
    def _json_write(name: str, report: dict, reports: dict, options: dict) -> None:
        """Every report so far rewritten to --json as each one is done, so a stopped run keeps its rows."""
        reports[name] = report
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(json.dumps(reports, indent=1) + "\n")
