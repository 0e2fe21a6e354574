"""The leave-source-out study of the CLIP-feature detector: data, features, levers, report.

`manage.py crossval_detector` runs it; `train_clip_blocks` ships the lever set it rewards, with thresholds
chosen on out-of-source scores. Each preset below is one lever added to the one before, so the ablation
reads top to bottom.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from detection.core.block_probe import ARCH, ProbeConfig, probe_train
from detection.core.card import ModelCard
from detection.core.crossval import (
    Protocol,
    crossval_report,
    crossval_run,
    samples_limit,
    thresholds_out_of_source,
)
from detection.core.data import Sample, folder_scan, split_save
from detection.core.features import BlockEncoder, FeatureCache, features_extract, folder_short_cap
from detection.core.files import heldout_scores_save
from detection.core.views import RECIPE, WORKING_SHORT

LAST = ProbeConfig(blocks=(), cls=False, patches=False, embed=True, views="global", balance="class")
PRESETS: dict[str, ProbeConfig] = {
    "last-layer": LAST,
    "+blocks-cls": replace(LAST, blocks=tuple(range(12)), cls=True, embed=False),
    "+patch-means": replace(LAST, blocks=tuple(range(12)), cls=True, patches=True, embed=False),
    "+crop": replace(LAST, blocks=tuple(range(12)), cls=True, patches=True, embed=False, views="all"),
    "+crop-max": replace(
        LAST, blocks=tuple(range(12)), cls=True, patches=True, embed=False, views="all", aggregate="max"
    ),
    "+source-balance": ProbeConfig(),
    "+l2x10": ProbeConfig(weight_decay=1e-2),
    "+l2x100": ProbeConfig(weight_decay=1e-1),
    "+scales": ProbeConfig(weight_decay=1e-1, scales=(160,)),
}


@dataclass
class StudyData:
    samples: list[Sample]
    features: np.ndarray  # N x views x FEATURE_DIM, fp16
    caps: dict[str, int]
    train_only: np.ndarray  # bool per sample: only trains (content-aligned pairs, re-shot copies)
    rescaled: dict[int, np.ndarray] = field(default_factory=dict)  # short side -> the views shrunk to it
    reshot: np.ndarray | None = None  # per sample: k for the k-th re-shot copy of an image, 0 for the image

    def __post_init__(self) -> None:
        if self.reshot is None:
            self.reshot = np.zeros(len(self.samples), dtype=int)

    @property
    def pairs(self) -> np.ndarray:
        """Per sample, whether it is one side of a content-aligned pair."""
        return self.train_only & (self.reshot == 0)

    def views_for(self, config: ProbeConfig) -> np.ndarray:
        """The working image's views, then those of each of `config.scales`, as the detector lays them out."""
        missing = [short for short in config.scales if short not in self.rescaled]
        if missing:
            raise ValueError(f"no features at short side {missing[0]}: pass it to study_data(scales=...)")
        return np.concatenate([self.features, *(self.rescaled[short] for short in config.scales)], axis=1)

    def subset(self, keep: Sequence[int]) -> StudyData:
        return StudyData(
            samples=[self.samples[i] for i in keep],
            features=self.features[keep],
            caps=self.caps,
            train_only=self.train_only[keep],
            rescaled={short: features[keep] for short, features in self.rescaled.items()},
            reshot=self.reshot[keep],
        )


def study_data(
    *,
    folders: Sequence[Path],
    encoder_path: Path,
    cache_dir: Path,
    crops: int = 1,
    per_unit: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    train_only_folders: Sequence[Path] = (),
    aligned_decoders: Collection[str] | None = None,
    scales: Sequence[int] = (),
    reshot_copies: int = 0,
) -> StudyData:
    """Every folder's samples (at most `per_unit` per source), their features computed where not cached,
    also at each smaller short side of `scales`. `train_only_folders` (content-aligned fakes) join training,
    never the figures; with `aligned_decoders`, only those decoders' pairs do. `reshot_copies` adds that many
    randomly re-shot copies of each image but the pairs (`transforms.image_reshot`: crop, colour, blur, noise,
    JPEG 30-95, on both classes alike), training only, each with its image's source and group, so held out
    with it."""
    samples, caps, train_only = samples_scan(
        folders=folders, train_only_folders=train_only_folders, per_unit=per_unit, aligned_decoders=aligned_decoders
    )
    extract = partial(
        features_extract,
        encoder=BlockEncoder(path=encoder_path, threads=threads),
        cache=FeatureCache(directory=cache_dir, recipe=RECIPE),
        crops=crops,
        short_caps=caps,
        folder_of=folder_namer([*folders, *train_only_folders]),
        progress=progress,
    )
    originals = [sample for sample, only in zip(samples, train_only, strict=True) if not only]

    def with_copies(**options) -> np.ndarray:
        copies = (extract(originals, reshot=k, **options) for k in range(1, reshot_copies + 1))
        return np.concatenate([extract(samples, **options), *copies])

    return StudyData(
        samples=samples + originals * reshot_copies,
        features=with_copies(),
        caps=caps,
        train_only=np.array(train_only + [True] * len(originals) * reshot_copies, dtype=bool),
        rescaled={short: with_copies(rescale=short) for short in scales},
        reshot=np.repeat(np.arange(reshot_copies + 1), [len(samples)] + [len(originals)] * reshot_copies),
    )


def folder_namer(folders: Sequence[Path]) -> Callable[[Sample], str]:
    """The name of the folder among `folders` that holds a sample: what its short-side cap is keyed by."""
    root = {Path(folder).resolve(): Path(folder).name for folder in folders}
    return lambda sample: next(name for path, name in root.items() if sample.path.resolve().is_relative_to(path))


def samples_scan(
    *,
    folders: Sequence[Path],
    train_only_folders: Sequence[Path],
    per_unit: int | None,
    aligned_decoders: Collection[str] | None,
) -> tuple[list[Sample], dict[str, int], list[bool]]:
    """The samples of `study_data`, each folder's short-side cap and, per sample, whether it only trains."""
    if aligned_decoders and not train_only_folders:
        raise ValueError("only some decoders' content-aligned pairs were asked for, but no aligned folder was given")
    samples: list[Sample] = []
    caps: dict[str, int] = {}
    train_only: list[bool] = []
    for folder in [*folders, *train_only_folders]:
        kept, caps[Path(folder).name] = folder_sampled(Path(folder), per_unit=per_unit)
        samples.extend(kept)
        train_only += [folder in train_only_folders] * len(kept)
    if aligned_decoders is None:
        return samples, caps, train_only
    only = np.array(train_only, dtype=bool)
    keep = ~only | pairs_of(samples, only, decoders=aligned_decoders)
    return [sample for sample, wanted in zip(samples, keep, strict=True) if wanted], caps, only[keep].tolist()


def folder_sampled(folder: Path, *, per_unit: int | None) -> tuple[list[Sample], int]:
    """A data folder's samples, at most `per_unit` per source, and the short side its working images are
    brought to (`features.folder_short_cap`, over all its images, so size says nothing of the class)."""
    scanned = folder_scan(folder=folder)
    return samples_limit(scanned, per_unit=per_unit), folder_short_cap(scanned, ceiling=WORKING_SHORT)


def probe_fit_for(data: StudyData, protocol: Protocol, config: ProbeConfig, *, trainable: np.ndarray | None = None):
    """The `fit` of `crossval_run`: train a probe on the given indices (those of them `trainable` allows),
    score others with it."""

    views = data.views_for(config)

    def fit(train: np.ndarray):
        if trainable is not None:
            train = train[trainable[train]]
        head = probe_train(views[train], protocol.labels[train], [protocol.units[i] for i in train], config=config)
        return lambda indices: head.scores(views[indices])

    return fit


def pairs_of(samples: Sequence[Sample], pairs: np.ndarray, *, decoders: Collection[str]) -> np.ndarray:
    """Per sample, whether it belongs to a content-aligned pair (`pairs`: whether it is a side of one) of one of
    `decoders`: the round trip or its photo's copy, which shares the round trip's group."""
    groups = np.array([sample.group for sample in samples])
    paired = [
        sample.group
        for sample, side in zip(samples, pairs, strict=True)
        if side and sample.label and sample.roundtrip_decoder in decoders
    ]
    return pairs & np.isin(groups, paired)


# The kinds of row in the ablation of the content-aligned pairs.
PAIRS_ROWS = ("without", "alone", "all-but")


def pairs_variants(
    *,
    samples: Sequence[Sample],
    pairs: np.ndarray,
    rows: Collection[str] = PAIRS_ROWS,
    decoders: Collection[str] = (),
) -> dict[str, np.ndarray]:
    """What may train in the ablation of the content-aligned pairs (`pairs`: whether each sample is a side of
    one), by row name, for the kinds in `rows`: no pair, then each decoder's pairs alone, then all decoders'
    but one, the per-decoder rows only for `decoders` when given. Every other image always trains; with all
    pairs is the preset's own row."""
    fakes = [sample for sample, side in zip(samples, pairs, strict=True) if side and sample.label]
    present = sorted({sample.roundtrip_decoder for sample in fakes})
    if unknown := set(decoders) - set(present):
        raise ValueError(f"no pairs of {', '.join(sorted(unknown))}; the pairs are of {', '.join(present)}")
    chosen = [decoder for decoder in present if not decoders or decoder in decoders]
    others = ~pairs
    variants = {"without pairs": others} if "without" in rows else {}
    for decoder in chosen if "alone" in rows else ():
        variants[f"{decoder} pairs only"] = others | pairs_of(samples, pairs, decoders={decoder})
    for decoder in chosen if "all-but" in rows else ():
        kept = set(present) - {decoder}
        variants[f"all pairs but {decoder}'s"] = others | pairs_of(samples, pairs, decoders=kept)
    return variants


def study_run(
    data: StudyData,
    *,
    presets: Sequence[str],
    k: int = 5,
    false_flag: float = 0.03,
    confidence: float = 0.0,
    collection_minimum: int = 1,
    seed: int = 0,
    pairs_ablation: Collection[str] = (),
    pairs_decoders: Collection[str] = (),
    reshot_ablation: bool = False,
    penalties: Sequence[float] = (),
    temperatures: Sequence[float] = (),
    hidden_widths: Sequence[int] = (),
    hidden_penalties: Sequence[float] = (),
) -> Iterator[tuple[str, dict]]:
    """Per preset, as each finishes: the leave-source-out report and the out-of-source scores behind it; then
    the last preset again per `pairs_variants` row of the kinds in `pairs_ablation` (its per-decoder rows only
    for `pairs_decoders`, when given), with `reshot_ablation` without the re-shot copies, with each L2 penalty
    of `penalties`, trained on a soft maximum of its sources' losses at each of `temperatures`
    (`ProbeConfig.balance` "worst"), and with a hidden layer of each of `hidden_widths` at each of
    `hidden_penalties` (default: the preset's), on the very same folds."""
    protocol = Protocol(data.samples, k=k, seed=seed, train_only=data.train_only)
    runs = [(name, PRESETS[name], None) for name in presets]
    variants = pairs_variants(samples=data.samples, pairs=data.pairs, rows=pairs_ablation, decoders=pairs_decoders)
    if reshot_ablation:
        if not data.reshot.any():
            raise ValueError("the ablation of re-shot copies needs some: give reshot_copies")
        variants["without re-shot copies"] = data.reshot == 0
    last = PRESETS[presets[-1]]
    runs += [(f"{presets[-1]}, {row}", last, mask) for row, mask in variants.items()]
    runs += [(f"{presets[-1]}, L2 {penalty:g}", replace(last, weight_decay=penalty), None) for penalty in penalties]
    runs += [
        (f"{presets[-1]}, worst source at {t:g}", replace(last, balance="worst", temperature=t), None)
        for t in temperatures
    ]
    runs += [
        (f"{presets[-1]}, hidden {width}, L2 {penalty:g}", replace(last, hidden=width, weight_decay=penalty), None)
        for width in hidden_widths
        for penalty in hidden_penalties or (last.weight_decay,)
    ]
    for name, config, trainable in runs:
        result = crossval_run(
            protocol,
            fit=probe_fit_for(data, protocol, config, trainable=trainable),
            false_flag=false_flag,
            confidence=confidence,
            collection_minimum=collection_minimum,
        )
        yield name, {"report": crossval_report(protocol, result), "result": result, "protocol": protocol}


def scores_csv_write(path: Path, protocol: Protocol, result: dict) -> None:
    """One row per counted image (not the training-only aligned fakes): what a peer benchmark needs to
    compare on the very same folds."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "source", "generator", "unit", "fold", "score", "threshold"])
        for i in np.flatnonzero(protocol.counted):
            sample = protocol.samples[i]
            writer.writerow(
                [
                    sample.path,
                    sample.label,
                    sample.source,
                    sample.generator,
                    protocol.units[i],
                    int(protocol.folds[i]),
                    f"{result['scores'][i]:.6f}",
                    f"{result['high'][i]:.6f}",
                ]
            )


def scores_csv_read(path: Path, protocol: Protocol) -> np.ndarray:
    """Another detector's out-of-source scores (`scores_csv_write`'s file) in `protocol`'s sample order; refused
    (ValueError) unless they cover the same counted images dealt to the same folds."""
    with Path(path).open(newline="") as handle:
        rows = {str(Path(row["path"]).resolve()): row for row in csv.DictReader(handle)}
    counted = np.flatnonzero(protocol.counted)
    keys = [str(protocol.samples[i].path.resolve()) for i in counted]
    dealt = [int(rows[key]["fold"]) for key in keys if key in rows]
    if set(keys) != set(rows) or dealt != protocol.folds[counted].tolist():
        raise ValueError(f"{path} scores other images or other folds than this protocol deals")
    scores = np.full(len(protocol.samples), np.nan)
    scores[counted] = [float(rows[key]["score"]) for key in keys]
    return scores


def lso_summary(report: dict) -> dict:
    """What a card, the README and the model settings page quote from a leave-source-out report."""
    keys = (
        "k",
        "false_flags_mean",
        "false_flags_worst",
        "false_flags_all",
        "to_human_all",
        "recall_mean",
        "recall_worst",
        "recall_all",
        "roc_auc",
        "recall_at_false_flags",
        "minimum_n",
    )
    worst_collection = max(
        (item for item in report["false_flags"].items() if item[1]["n"] >= report["minimum_n"]),
        key=lambda item: item[1]["rate"],
        default=(None, None),
    )[0]
    return {
        **{key: report[key] for key in keys},
        "worst_collection": worst_collection,
        "false_flags": report["false_flags"],
        "to_human": report["to_human"],
        "recall": report["recall"],
    }


def seed_test_exclude(data: StudyData, test_split: dict | None) -> StudyData:
    """`data` without the images of the test part of `test_split` (the seed test split), their re-shot copies
    (the same path) nor the content-aligned pairs made from them: a pair's group is its photo's under the
    aligned folder's name (`aligned:landscapes:7`), and a round trip of a test photo would teach the head that
    very photo's content."""
    test = test_split["splits"]["test"] if test_split else []
    paths, groups = {sample.path for sample in test}, {sample.group for sample in test}
    pairs = data.pairs
    keep = [
        i
        for i, sample in enumerate(data.samples)
        if sample.path not in paths and not (pairs[i] and sample.group.split(":", 1)[-1] in groups)
    ]
    return data.subset(keep)


def _blocks_card(
    *,
    name: str,
    crops: int,
    scales: Sequence[int],
    thresholds: dict,
    report: dict,
    training: dict,
    split_file: str | None,
) -> dict:
    """The shipped clip_blocks card, but the probe's configuration (block_detector.block_bundle_save adds it)."""
    from detection.core.block_detector import STABILITY_JPEG, STABILITY_SCALE
    from detection.core.clip_probe import ENCODER_FILE, ENCODER_ORIGIN, ENCODER_SHA256
    from detection.core.encoder_graph import DERIVATION

    rescaled = "".join(f"; the same views of the working image shrunk to a {short} px short side" for short in scales)

    card = {
        "name": name,
        "arch": ARCH,
        "version": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "image_size": WORKING_SHORT,
        "crops": crops,
        "preprocessing": (
            f"decode -> EXIF transpose -> RGB -> short side at most {WORKING_SHORT} px (Lanczos) -> JPEG 90 -> "
            f"views: the whole frame squashed to 224 px and {crops} crop(s) of 224 px at that scale along the long "
            f"side{rescaled} -> CLIP mean/std; each view's logit from 12 blocks' CLS and patch-mean tokens, averaged"
        ),
        "stability": {"scale": STABILITY_SCALE, "jpeg": STABILITY_JPEG},
        "encoder_file": ENCODER_FILE,
        "encoder_sha256": ENCODER_SHA256,
        "encoder_origin": ENCODER_ORIGIN,
        "encoder_derivation": DERIVATION,
        "thresholds": {**thresholds, "chosen_on": "out-of-source scores (leave-source-out, every image)"},
        "leave_source_out": lso_summary(report),
        "training": training,
    }
    return {**card, "split_file": split_file} if split_file else card


def _out_of_source(
    data: StudyData, protocol: Protocol, config: ProbeConfig, *, minimum_n: int, **calibration
) -> tuple[dict, dict, np.ndarray, dict]:
    """The protocol's result and report, the indices of the images it counts and the thresholds chosen on
    their scores: every image's score comes from a model that never saw its source, so thresholds that hold
    on new ones. `calibration`: thresholds_calibrate's options."""
    result = crossval_run(protocol, fit=probe_fit_for(data, protocol, config), **calibration)
    report = crossval_report(protocol, result, minimum=minimum_n)
    counted = np.flatnonzero(protocol.counted)
    thresholds = thresholds_out_of_source(protocol, counted, result["scores"][counted], **calibration)
    return result, report, counted, thresholds


def _training_record(data: StudyData, protocol: Protocol, *, preset: str, started: float) -> dict:
    """The card's `training` entry: what the shipped head was fitted on, and how long it all took."""
    return {
        "preset": preset,
        "images": len(data.samples),
        "reshot_copies": int(data.reshot.max(initial=0)),
        "sources": sorted(set(protocol.units)),
        "folders": sorted(data.caps),
        "short_side_caps": data.caps,
        "seconds": round(time.monotonic() - started, 1),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _test_split_save(*, directory: Path, test_split: dict) -> str:
    """Save only the test part of `test_split` as the bundle's split file (every other image of the shared
    sets may have trained this model); returns its name."""
    splits = {name: (samples if name == "test" else []) for name, samples in test_split["splits"].items()}
    split_save({**test_split, "holdout_sources": [], "splits": splits}, path=directory / "split.json")
    return "split.json"


def clip_blocks_train(
    data: StudyData,
    *,
    preset: str,
    out_dir: Path,
    name: str,
    encoder_path: Path,
    crops: int,
    k: int = 5,
    false_flag: float = 0.03,
    confidence: float = 0.0,
    collection_minimum: int = 1,
    test_split: dict | None = None,
    seed: int = 0,
    minimum_n: int = 10,
) -> dict:
    """Ship the probe: leave-source-out figures and out-of-source thresholds from the protocol, then one
    head trained on every image but the test part of `test_split` (the seed test split), which is saved
    as the bundle's split.json, alone, for `evaluate_detector`. Returns the card (a ModelCard), the protocol
    and its result."""
    from detection.core.block_detector import block_bundle_save
    from detection.core.clip_probe import ENCODER_FILE

    started = time.monotonic()
    data = seed_test_exclude(data, test_split)
    config = PRESETS[preset]
    protocol = Protocol(data.samples, k=k, seed=seed, train_only=data.train_only)
    calibration = {"false_flag": false_flag, "confidence": confidence, "collection_minimum": collection_minimum}
    result, report, counted, thresholds = _out_of_source(data, protocol, config, minimum_n=minimum_n, **calibration)
    head = probe_train(data.views_for(config), protocol.labels, protocol.units, config=config)
    directory = Path(out_dir) / name
    split_file = _test_split_save(directory=directory, test_split=test_split) if test_split else None
    card = ModelCard.from_dict(
        _blocks_card(
            name=name,
            crops=crops,
            scales=config.scales,
            thresholds=thresholds,
            report=report,
            training=_training_record(data, protocol, preset=preset, started=started),
            split_file=split_file,
        )
    )
    card = block_bundle_save(directory=directory, head=head, card=card)
    if not (directory / ENCODER_FILE).is_file():
        shutil.copyfile(encoder_path, directory / ENCODER_FILE)
    # For recalibration on moderators' decisions (detection.services_settings): out-of-source scores.
    heldout_scores_save(
        directory=directory,
        samples=[data.samples[i] for i in counted],
        probs=result["scores"][counted],
        version=card.version,
    )
    return {"card": card, "protocol": protocol, "result": result}
