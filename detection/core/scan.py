"""Score image files and folders one by one; an unreadable file yields an error record, never a crash."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from detection.core.data import IMAGE_SUFFIXES
from detection.core.preprocess import image_decode
from detection.core.scoring import ScoringBase


def paths_expand(paths: Sequence[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively for image files, in sorted order."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def paths_detect(*, detector: ScoringBase, paths: Sequence[Path]) -> Iterator[dict]:
    """One record per image: {"path", "model", "ai_probability", "verdict"} or {"path", "model", "error"}."""
    for path in paths_expand(paths):
        record: dict = {"path": str(path), "model": detector.name}
        try:
            image = image_decode(path.read_bytes())
        except (OSError, ValueError) as exc:
            record["error"] = str(exc)
            yield record
            continue
        probability, variant = detector.predict_checked(image)
        record["ai_probability"] = round(probability, 6)
        record["verdict"] = detector.verdict(probability, variant=variant)
        yield record
