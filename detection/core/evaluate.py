"""Evaluation of a Detector on a saved split: JSON + self-contained HTML report.

Everything is scored from the original files through the serving path (decode -> canonical -> net), so
the figures describe what the portal will do, including on re-encoded and resized copies.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from string import Template

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by workers and commands
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from tqdm import tqdm

from detection.core.card import ModelCard, Thresholds
from detection.core.data import Sample
from detection.core.metrics import (
    confusion_counts,
    false_flag_at_recall,
    figures_at,
    roc_curve,
    thresholds_for_samples,
)
from detection.core.preprocess import image_decode, image_jpeg
from detection.core.scoring import ScoringBase
from detection.core.verdicts import verdict_for

TARGETS = {
    "scenery_f1_min": 0.95,
    "false_flag_max": 0.02,
    "shortcut_probe_max_increase": 0.03,
    "heldout_source_false_flag_max": 0.10,
}
GALLERY_SIZE = 8
VERDICTS = ("ai", "uncertain", "real")  # score >= high, between low and high, below low


def _scale(img: Image.Image, factor: float, resample: Image.Resampling) -> Image.Image:
    return img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), resample)


def _probe_upscale(img: Image.Image) -> Image.Image:
    """A small real photo made to look like a large camera file: x4 bicubic, saved as JPEG quality 95."""
    return image_jpeg(_scale(img, 4, Image.Resampling.BICUBIC), quality=95)


ROBUSTNESS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg_q90": lambda img: image_jpeg(img, quality=90),
    "jpeg_q70": lambda img: image_jpeg(img, quality=70),
    "jpeg_q50": lambda img: image_jpeg(img, quality=50),
    "downscale_x0.5": lambda img: _scale(img, 0.5, Image.Resampling.LANCZOS),
    "upscale_x2": lambda img: _scale(img, 2, Image.Resampling.BICUBIC),
}


def probabilities_score(
    detector: ScoringBase,
    samples: Sequence[Sample],
    *,
    transform: Callable[[Image.Image], Image.Image] | None = None,
    desc: str = "score",
) -> np.ndarray:
    """AI probability of each sample file, optionally transformed before the canonical path."""
    arrays = []
    for sample in tqdm(samples, desc=desc, mininterval=10):
        img = image_decode(sample.path.read_bytes())
        arrays.append(detector.canonical(transform(img) if transform else img))
    return np.asarray(detector.predict_arrays(arrays), dtype=np.float32)


def metrics_block(labels: np.ndarray, probs: np.ndarray, high: float) -> dict:
    """Counts, precision/recall/F1, false-flag rate and ROC AUC at threshold `high`."""
    return {"n": len(labels), **figures_at(labels=labels, scores=probs, high=high)}


def _png_data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(labels: np.ndarray, probs: np.ndarray, sceneries: list[str], thresholds: Thresholds) -> dict[str, str]:
    plots = {}
    fig, ax = plt.subplots(figsize=(4, 4))
    fpr, tpr = roc_curve(labels=labels, scores=probs)
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false-flag rate", ylabel="AI recall", title="ROC, test split")
    plots["roc"] = _png_data_uri(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 41)
    ax.hist(probs[labels == 0], bins=bins, alpha=0.6, label="real")
    ax.hist(probs[labels == 1], bins=bins, alpha=0.6, label="AI")
    for key, value, style in (("low", thresholds.low, ":"), ("high", thresholds.high, "--")):
        ax.axvline(value, color="black", linestyle=style, label=f"{key} {value:.3g}")
    ax.set(yscale="log", xlabel="AI probability", ylabel="images", title="Scores, test split")
    ax.legend()
    plots["histogram"] = _png_data_uri(fig)

    names = sorted(set(sceneries))
    fig, axes = plt.subplots(1, len(names), figsize=(2.2 * len(names), 2.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        mask = np.array([s == name for s in sceneries])
        c = confusion_counts(labels=labels[mask], flagged=probs[mask] >= thresholds.high)
        matrix = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center")
        ax.set(title=name, xticks=[0, 1], yticks=[0, 1], xticklabels=["pass", "flag"], yticklabels=["real", "AI"])
    plots["confusion"] = _png_data_uri(fig)
    return plots


def _gallery(detector: ScoringBase, samples: Sequence[Sample], probs: np.ndarray, *, order: np.ndarray) -> list[dict]:
    items = []
    for index in order[:GALLERY_SIZE]:
        sample = samples[int(index)]
        array = detector.canonical(image_decode(sample.path.read_bytes()))
        overlay = detector.overlay_array(array)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        items.append(
            {
                "path": str(sample.path),
                "scenery": sample.scenery,
                "source": sample.source,
                "ai_probability": float(probs[int(index)]),
                "image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                "heatmap": "data:image/png;base64," + base64.b64encode(overlay).decode(),
            }
        )
    return items


def _test_block(test: Sequence[Sample], labels: np.ndarray, probs: np.ndarray, *, low: float, high: float) -> dict:
    """The test split's figures: overall, the landscapes (every scenery but "other"), per scenery, the reals'
    false-flag rate overall and per source, and the count of each verdict, overall and per class."""
    sceneries = np.array([s.scenery for s in test])
    per_scenery = {
        name: metrics_block(labels[sceneries == name], probs[sceneries == name], high)
        for name in sorted(set(sceneries.tolist()))
    }
    real_mask = labels == 0
    per_source = defaultdict(list)
    for sample, p in zip(test, probs, strict=True):
        if sample.label == 0:
            per_source[sample.source].append(float(p >= high))
    verdicts = np.array([verdict_for(float(p), low=low, high=high) for p in probs], dtype=object)
    uncertain = verdicts == "uncertain"
    by_class = {
        name: {verdict: int(np.sum(verdicts[of_class] == verdict)) for verdict in VERDICTS}
        for name, of_class in (("genuine", real_mask), ("ai", ~real_mask))
    }
    return {
        "overall": metrics_block(labels, probs, high),
        "landscapes": metrics_block(labels[sceneries != "other"], probs[sceneries != "other"], high),
        "per_scenery": per_scenery,
        "false_flag_rate_real": float(np.mean(probs[real_mask] >= high)) if real_mask.any() else None,
        "false_flag_rate_real_per_source": {k: float(np.mean(v)) for k, v in sorted(per_source.items())},
        "uncertain_share": float(np.mean(uncertain)),
        "verdicts": {verdict: int(np.sum(verdicts == verdict)) for verdict in VERDICTS},
        "verdicts_by_class": by_class,
        # What a moderation team lives with, beside F1 at `high` (the model settings page shows them).
        "ai_passed_as_genuine": _share(by_class["ai"], "real"),
        "genuine_to_moderator": _share(by_class["genuine"], "uncertain"),
    }


def _share(counts: dict[str, int], verdict: str) -> float | None:
    total = sum(counts.values())
    return counts[verdict] / total if total else None


def _heldout_block(detector: ScoringBase, heldout: Sequence[Sample], *, high: float) -> dict:
    """False-flag rates on the sources held out of training, overall and per source."""
    probs = probabilities_score(detector, heldout, desc="heldout") if heldout else np.zeros(0)
    per_source = defaultdict(list)
    for sample, p in zip(heldout, probs, strict=True):
        per_source[sample.source].append(float(p >= high))
    return {
        "false_flag_rate": float(np.mean(probs >= high)) if len(heldout) else None,
        "per_source": {k: {"n": len(v), "false_flag_rate": float(np.mean(v))} for k, v in sorted(per_source.items())},
    }


def _shortcut_probe(detector: ScoringBase, test: Sequence[Sample], probs: np.ndarray, *, high: float) -> dict:
    """Do real test photos get flagged more once upscaled x4 and saved as JPEG q95, like camera files?"""
    real_test = [s for s in test if s.label == 0]
    native = probs[np.array([s.label == 0 for s in test])]
    probed = probabilities_score(detector, real_test, transform=_probe_upscale, desc="probe")
    block = {
        "n": len(real_test),
        "false_flag_native": float(np.mean(native >= high)),
        "false_flag_upscaled_x4_jpeg95": float(np.mean(probed >= high)),
        "mean_probability_native": float(native.mean()),
        "mean_probability_upscaled": float(probed.mean()),
    }
    block["increase"] = block["false_flag_upscaled_x4_jpeg95"] - block["false_flag_native"]
    block["passed"] = block["increase"] <= TARGETS["shortcut_probe_max_increase"]
    return block


def _robustness(
    detector: ScoringBase,
    test: Sequence[Sample],
    labels: np.ndarray,
    probs: np.ndarray,
    *,
    high: float,
    samples: int | None,
) -> dict:
    """Figures on the test split (or a seeded subset of `samples`) after each ROBUSTNESS transform."""
    subset = np.arange(len(test))
    if samples is not None and samples < len(test):
        subset = np.sort(np.random.default_rng(0).choice(len(test), size=samples, replace=False))
    chosen = [test[i] for i in subset]
    block = {"native": metrics_block(labels[subset], probs[subset], high)}
    for name, transform in ROBUSTNESS.items():
        scores = probabilities_score(detector, chosen, transform=transform, desc=name)
        block[name] = metrics_block(labels[subset], scores, high)
    return block


def _targets(report: dict) -> dict:
    f1s = [m["f1"] for name, m in report["test"]["per_scenery"].items() if name != "other"]
    heldout_rates = [v["false_flag_rate"] for v in report["heldout_sources"]["per_source"].values()]
    return {
        **TARGETS,
        "scenery_f1_met": bool(f1s) and all(f is not None and f >= TARGETS["scenery_f1_min"] for f in f1s),
        # The target is set on the seed's own test split (the six sceneries); the rate over every real test
        # photo, other collections included, is reported beside it as `test.false_flag_rate_real`.
        "false_flag_met": (report["test"]["landscapes"]["false_flag_rate"] or 0.0) <= TARGETS["false_flag_max"],
        "shortcut_probe_met": report["shortcut_probe"]["passed"],
        "heldout_source_false_flag_met": all(r <= TARGETS["heldout_source_false_flag_max"] for r in heldout_rates),
    }


def _galleries(
    detector: ScoringBase, test: Sequence[Sample], labels: np.ndarray, probs: np.ndarray, *, high: float
) -> dict[str, list[dict]]:
    """The most confidently wrong test images of each kind, with their heatmaps."""
    false_pos = np.nonzero(labels == 0)[0]
    false_pos = false_pos[np.argsort(-probs[false_pos])]
    false_neg = np.nonzero(labels != 0)[0]
    false_neg = false_neg[np.argsort(probs[false_neg])]
    return {
        "false_positives": _gallery(detector, test, probs, order=false_pos[probs[false_pos] >= high]),
        "false_negatives": _gallery(detector, test, probs, order=false_neg[probs[false_neg] < high]),
    }


def evaluate_run(
    *,
    detector: ScoringBase,
    split: dict,
    out_dir: Path,
    robustness: bool = True,
    robustness_samples: int | None = None,
) -> dict:
    """Score the test and held-out splits, write `out_dir/report.json` and `out_dir/report.html`.
    `robustness_samples` limits the robustness table to a seeded random subset of the test split (slow
    models); the native row is then recomputed on that subset so rows stay comparable."""
    thresholds = detector.card.thresholds
    high, low = thresholds.high, thresholds.low
    test: list[Sample] = split["splits"]["test"]
    labels = np.array([s.label for s in test])
    probs = probabilities_score(detector, test, desc="test")
    report: dict = {
        "model": {
            "name": detector.name,
            "version": detector.version,
            "arch": detector.card.arch,
            "image_size": detector.image_size,
            "thresholds": thresholds.to_dict(),
        },
        "split": {
            "seed": split.get("seed"),
            "holdout_sources": split.get("holdout_sources"),
            "fingerprint": split.get("fingerprint"),
            "sizes": {name: len(samples) for name, samples in split["splits"].items()},
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "test": _test_block(test, labels, probs, low=low, high=high),
        "heldout_sources": _heldout_block(detector, split["splits"].get("heldout", []), high=high),
        "shortcut_probe": _shortcut_probe(detector, test, probs, high=high),
    }
    if robustness:
        report["robustness"] = _robustness(detector, test, labels, probs, high=high, samples=robustness_samples)
    report["targets"] = _targets(report)
    galleries = _galleries(detector, test, labels, probs, high=high)
    plots = _plots(labels, probs, [s.scenery for s in test], thresholds)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.html").write_text(report_html(report, plots=plots, galleries=galleries))
    return report


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _table(rows: dict[str, dict], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("", *columns))
    body = "".join(
        "<tr><th>" + html.escape(name) + "</th>" + "".join(f"<td>{_fmt(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


REPORT_TEMPLATE = Path(__file__).parent / "templates" / "report.html"
METRIC_COLUMNS = ("n", "precision", "recall", "f1", "false_flag_rate", "roc_auc", "tp", "fp", "tn", "fn")


def _figure(item: dict) -> str:
    return (
        f"<figure><img src='{item['image']}'><img src='{item['heatmap']}'><figcaption>"
        f"p={item['ai_probability']:.3f} {html.escape(item['scenery'])}/{html.escape(item['source'])}<br>"
        f"{html.escape(item['path'])}</figcaption></figure>"
    )


def _gallery_html(title: str, items: list[dict]) -> str:
    head = f"<h2>{html.escape(title.replace('_', ' '))} ({len(items)} shown)</h2><div class='g'>"
    return "\n".join([head, *(_figure(item) for item in items), "</div>"])


def report_html(report: dict, *, plots: dict[str, str], galleries: dict[str, list[dict]]) -> str:
    """The report as one self-contained HTML page (images inlined as data URIs), from templates/report.html."""
    model, test = report["model"], report["test"]
    robustness = ""
    if "robustness" in report:
        robustness = (
            "<h2>Robustness (test split, transformed before the canonical path)</h2>\n"
            + _table(report["robustness"], METRIC_COLUMNS)
            + "\n"
        )
    return Template(REPORT_TEMPLATE.read_text().rstrip("\n")).substitute(
        name=html.escape(model["name"]),
        arch=html.escape(model["arch"]),
        version=html.escape(model["version"]),
        image_size=model["image_size"],
        low=_fmt(model["thresholds"]["low"]),
        high=_fmt(model["thresholds"]["high"]),
        seed=report["split"]["seed"],
        sizes=html.escape(str(report["split"]["sizes"])),
        holdout_sources=html.escape(", ".join(report["split"]["holdout_sources"] or [])),
        created=report["created"],
        targets=_table({"": report["targets"]}, list(report["targets"])),
        sceneries=_table(
            {**test["per_scenery"], "landscapes": test["landscapes"], "all": test["overall"]}, METRIC_COLUMNS
        ),
        false_flag_rate_real=_fmt(test["false_flag_rate_real"]),
        uncertain_share=_fmt(test["uncertain_share"]),
        verdicts=test["verdicts"],
        verdicts_by_class=_table(test["verdicts_by_class"], VERDICTS),
        per_source=html.escape(json.dumps(test["false_flag_rate_real_per_source"])),
        heldout_rate=_fmt(report["heldout_sources"]["false_flag_rate"]),
        heldout=_table(report["heldout_sources"]["per_source"], ("n", "false_flag_rate")),
        probe=_table({"probe": report["shortcut_probe"]}, list(report["shortcut_probe"])),
        robustness=robustness,
        plots="\n".join(f"<img src='{uri}' alt='{name}'>" for name, uri in plots.items()),
        galleries="".join(_gallery_html(title, items) + "\n" for title, items in galleries.items()),
    )


def detector_evaluate(
    *,
    weights_dir: Path,
    name: str,
    folders: Sequence[Path] | None = None,
    device: str = "cpu",
    robustness: bool = True,
    robustness_samples: int | None = None,
    threads: int | None = None,
) -> dict:
    """Evaluate bundle `name` on the split saved with it; report.{json,html} go into the bundle folder.
    What `manage.py evaluate_detector` runs."""
    from detection.core.data import data_fingerprint, split_load
    from detection.core.loading import detector_open

    detector = detector_open(weights_dir=weights_dir, name=name, device=device, threads=threads)
    directory = Path(weights_dir) / name
    split_file = directory / (detector.card.split_file or "split.json")
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file} is missing: the test split of {name} is unknown")
    split = split_load(path=split_file, folders=folders)
    if folders:
        # Warn, don't fail: the figures still describe the files listed in the split.
        current = data_fingerprint(folders=folders)
        if current != split["fingerprint"]:
            print(f"warning: data fingerprint {current[:12]} differs from the split's {split['fingerprint'][:12]}")
    return evaluate_run(
        detector=detector, split=split, out_dir=directory, robustness=robustness, robustness_samples=robustness_samples
    )


def detector_calibrate(
    *,
    weights_dir: Path,
    name: str,
    folders: Sequence[Path] | None = None,
    false_flag: float = 0.02,
    confidence: float = 0.95,
    threads: int | None = None,
) -> ModelCard:
    """Choose the thresholds of bundle `name` afresh on the validation part of its split, with the shipped
    (fp16) weights, and write them and the validation figures at them into its card. What `manage.py
    calibrate_detector` runs; the test split is never read."""
    from datetime import UTC, datetime

    from detection.core.bundle import card_save
    from detection.core.data import split_load
    from detection.core.files import heldout_scores_save
    from detection.core.loading import detector_open

    detector = detector_open(weights_dir=weights_dir, name=name, threads=threads)
    directory = Path(weights_dir) / name
    split = split_load(path=directory / (detector.card.split_file or "split.json"), folders=folders)
    val = split["splits"]["val"]
    labels = np.array([sample.label for sample in val])
    probs = probabilities_score(detector, val, desc="score val")
    thresholds = thresholds_for_samples(val, probs, false_flag=false_flag, confidence=confidence)
    block = metrics_block(labels, probs, thresholds["high"])
    metrics = detector.card.metrics or {}
    card = dataclasses.replace(
        detector.card,
        thresholds=Thresholds.from_dict(thresholds),
        metrics={**metrics, "val": {**metrics.get("val", {}), **{k: v for k, v in block.items() if k != "n"}}},
        calibrated=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    card_save(directory=directory, card=card)
    heldout_scores_save(directory=directory, samples=val, probs=probs, version=card.version)
    return card


def detectors_compare(
    *,
    weights_dir: Path,
    names: Sequence[str],
    recalls: Sequence[float],
    folders: Sequence[Path] | None = None,
    samples: Sequence[Sample] | None = None,
) -> dict[str, dict[float, float | None]]:
    """False-flag rate of each bundle on the seed test split (every scenery but "other") at each recall:
    the "lowest false-flag rate at equal recall" that picks the portal's default. The bundles must share a
    test split, or the comparison would not be like with like. `samples` (e.g. the portal's decided uploads,
    an `export_decisions` folder) replace the split: every bundle is scored on the same images."""
    from detection.core.data import split_load
    from detection.core.loading import detector_open

    if samples is not None:
        first = list(samples)
        if not first:
            raise ValueError("no images to compare on")
    else:
        tests = {}
        for name in names:
            split = split_load(path=Path(weights_dir) / name / "split.json", folders=folders)
            tests[name] = [sample for sample in split["splits"]["test"] if sample.scenery != "other"]
        first = tests[names[0]]
        for name in names[1:]:
            if [s.path for s in tests[name]] != [s.path for s in first]:
                raise ValueError(f"{name} was tested on another split than {names[0]}")
    labels = np.array([sample.label for sample in first])
    table = {}
    for name in names:
        # Keras bundles in a TensorFlow child: the PyTorch ones load in this process.
        scores = probabilities_score(detector_open(weights_dir=weights_dir, name=name, isolated=True), first, desc=name)
        table[name] = {recall: false_flag_at_recall(labels=labels, scores=scores, recall=recall) for recall in recalls}
    return table
