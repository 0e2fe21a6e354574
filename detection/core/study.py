"""The leave-source-out study of the CLIP-feature detector: data, features, levers, report.

`manage.py crossval_detector` runs it; `train_clip_blocks` ships the lever set it rewards, with thresholds
chosen on out-of-source scores. Each preset below is one lever added to the one before, so the ablation
reads top to bottom.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from detection.core.block_probe import ProbeConfig, probe_train
from detection.core.crossval import Protocol, crossval_report, crossval_run, samples_limit
from detection.core.data import Sample, folder_scan
from detection.core.features import BlockEncoder, FeatureCache, features_extract, folder_short_cap
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
}


@dataclass
class StudyData:
    samples: list[Sample]
    features: np.ndarray  # N x views x FEATURE_DIM, fp16
    caps: dict[str, int]


def study_data(
    *,
    folders: Sequence[Path],
    encoder_path: Path,
    cache_dir: Path,
    crops: int = 1,
    per_unit: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StudyData:
    """Every folder's samples (at most `per_unit` per source), their features computed where not cached."""
    samples: list[Sample] = []
    caps: dict[str, int] = {}
    for folder in folders:
        scanned = folder_scan(folder=Path(folder))
        caps[Path(folder).name] = folder_short_cap(scanned, ceiling=WORKING_SHORT)
        samples.extend(samples_limit(scanned, per_unit=per_unit))
    root = {Path(folder).resolve(): Path(folder).name for folder in folders}

    def folder_of(sample: Sample) -> str:
        return next(name for path, name in root.items() if sample.path.resolve().is_relative_to(path))

    encoder = BlockEncoder(path=encoder_path, threads=threads)
    features = features_extract(
        samples,
        encoder=encoder,
        cache=FeatureCache(directory=cache_dir, recipe=RECIPE),
        crops=crops,
        short_caps=caps,
        folder_of=folder_of,
        progress=progress,
    )
    return StudyData(samples=samples, features=features, caps=caps)


def probe_fit_for(data: StudyData, protocol: Protocol, config: ProbeConfig):
    """The `fit` of `crossval_run`: train a probe on the given indices, score others with it."""

    def fit(train: np.ndarray):
        head = probe_train(
            data.features[train], protocol.labels[train], [protocol.units[i] for i in train], config=config
        )
        return lambda indices: head.scores(data.features[indices])

    return fit


def study_run(
    data: StudyData,
    *,
    presets: Sequence[str],
    k: int = 5,
    false_flag: float = 0.03,
    confidence: float = 0.0,
    seed: int = 0,
) -> dict[str, dict]:
    """Per preset: the leave-source-out report and the out-of-source scores behind it."""
    protocol = Protocol(data.samples, k=k, seed=seed)
    results = {}
    for name in presets:
        result = crossval_run(
            protocol, fit=probe_fit_for(data, protocol, PRESETS[name]), false_flag=false_flag, confidence=confidence
        )
        results[name] = {"report": crossval_report(protocol, result), "result": result, "protocol": protocol}
    return results


def scores_csv_write(path: Path, protocol: Protocol, result: dict) -> None:
    """One row per image: what a peer benchmark needs to compare on the very same folds."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "source", "generator", "unit", "fold", "score", "threshold"])
        for i, sample in enumerate(protocol.samples):
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
