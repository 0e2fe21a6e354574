"""Golden outputs: a model proves it computes on this machine what it computed where it was made.

CPU kernels differ (onnxruntime's int8 kernel saturates without VNNI; quantized and float kernels
round differently), so a bundle carries `golden.json`: its outputs on a few inputs that this module
makes from arithmetic alone. Loading a model for serving recomputes them and refuses the model, with
the CPU's features and the runtime versions in the message, when they drift. Golden files are written
by `golden_write` (training does it; `manage.py detector_golden` regenerates them), never by hand.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from detection.core.files import WEIGHT_FILES, NoTrainedWeights, card_load, file_sha256
from detection.core.scoring import ScoringBase

GOLDEN_FILE = "golden.json"
GOLDEN_COUNT = 4
MIN_EMBEDDING_COSINE = 0.999
MAX_PROBABILITY_ERROR = 0.01
# Logit margins catch drift that saturated probabilities (0.9999 either way) would hide.
MAX_MARGIN_ERROR = 0.05
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
RUNTIMES = ("onnxruntime", "torch", "tensorflow", "tensorflow-cpu", "keras", "numpy")
REGENERATE = "manage.py detector_golden --model {name}"


class SelfTestFailed(NoTrainedWeights):
    """The model's outputs on this machine differ from its golden outputs: like a model without weights, it
    is unavailable here, and every caller that refuses one refuses the other with its message."""


def golden_inputs(*, size: int, count: int = GOLDEN_COUNT) -> np.ndarray:
    """`count` uint8 RGB images, size x size, from integer arithmetic only (no RNG whose stream could
    change between library versions): a colour gradient, a texture and hashed noise, different for each."""
    rows, cols = np.meshgrid(np.arange(size, dtype=np.uint64), np.arange(size, dtype=np.uint64), indexing="ij")
    images = []
    for index in range(count):
        channels = []
        for channel in range(3):
            seed = np.uint64(index * 3 + channel + 1)
            noise = (
                (rows * np.uint64(1103515245) + cols * np.uint64(2654435761) + seed * np.uint64(40503))
                * np.uint64(2246822519)
                >> np.uint64(13)
            ) % np.uint64(256)
            gradient = (rows.astype(np.float64) * (40 + 30 * channel) + cols * (25 * index)) / max(size - 1, 1)
            period = 3 + 5 * index + 2 * channel
            texture = 50 * np.sin(2 * np.pi * (rows + 2 * cols).astype(np.float64) / period)
            mix = 0.15 + 0.2 * index
            value = 60 + 40 * channel + gradient + texture * (1 - mix) + (noise.astype(np.float64) - 128) * mix
            channels.append(np.clip(value, 0, 255).round().astype(np.uint8))
        images.append(np.stack(channels, axis=-1))
    return np.stack(images)


def platform_description() -> str:
    """CPU, the features that decide which kernels run, and the runtime versions."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    present = [feature for feature in CPU_FEATURES if feature in flags]
    absent = [feature for feature in CPU_FEATURES if feature not in flags]
    return (
        f"{model} ({' '.join(present) or 'none of ' + ', '.join(CPU_FEATURES)}; without {' '.join(absent) or '-'}); "
        + ", ".join(_runtime_versions())
    )


def _runtime_versions() -> list[str]:
    # Read from the installed distributions, so describing the platform imports no framework.
    versions = []
    for distribution in RUNTIMES:
        try:
            versions.append(f"{distribution} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            continue
    return versions


def outputs_compute(detector: ScoringBase) -> dict[str, list]:
    """The detector's outputs on the golden inputs (AI probabilities, and what its network exposes before
    them: logits, a frozen encoder's embeddings)."""
    return detector.golden_outputs(list(golden_inputs(size=detector.image_size)))


def _fingerprint(directory: Path) -> dict[str, str]:
    """sha256 of every file whose bytes decide the outputs."""
    encoder_file = card_load(directory=directory).encoder_file
    files = [name for name in WEIGHT_FILES if (directory / name).is_file()]
    files += [encoder_file] if encoder_file else []
    return {name: file_sha256(directory / name) for name in files}


def golden_write(*, directory: Path, detector: ScoringBase) -> dict:
    """Compute the golden outputs of the bundle in `directory` (as loaded in `detector`) and save them."""
    directory = Path(directory)
    golden = {
        "model": detector.name,
        "version": detector.version,
        "files_sha256": _fingerprint(directory),
        "made_by": REGENERATE.format(name=detector.name),
        "made_on": platform_description(),
        "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {
            "function": "detection.core.selftest.golden_inputs",
            "size": detector.image_size,
            "count": GOLDEN_COUNT,
        },
        "outputs": {
            key: np.round(np.asarray(value, dtype=np.float64), 7).tolist()
            for key, value in outputs_compute(detector).items()
        },
    }
    (directory / GOLDEN_FILE).write_text(json.dumps(golden, indent=1) + "\n")
    return golden


def _cosines(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(actual, axis=1)
    return (expected * actual).sum(axis=1) / np.maximum(norms, 1e-12)


def outputs_compare(*, expected: dict[str, list], actual: dict[str, list]) -> list[str]:
    """What drifted beyond tolerance, in words; empty when the outputs agree."""
    problems = []
    if "embeddings" in expected:
        cosine = float(_cosines(np.asarray(expected["embeddings"]), np.asarray(actual["embeddings"])).min())
        if not cosine >= MIN_EMBEDDING_COSINE:
            problems.append(f"embedding cosine {cosine:.4f} < {MIN_EMBEDDING_COSINE}")
    probability_error = float(np.abs(np.subtract(expected["probabilities"], actual["probabilities"])).max())
    if not probability_error <= MAX_PROBABILITY_ERROR:
        problems.append(f"AI probability off by {probability_error:.4f} > {MAX_PROBABILITY_ERROR}")
    if "logits" in expected:
        margin_error = float(np.abs(_margins(actual["logits"]) - _margins(expected["logits"])).max())
        if not margin_error <= MAX_MARGIN_ERROR:
            problems.append(f"logit margin off by {margin_error:.4f} > {MAX_MARGIN_ERROR}")
    return problems


def _margins(logits: list) -> np.ndarray:
    """AI-minus-real logit per input: a two-class softmax's difference, a one-unit sigmoid's logit itself."""
    values = np.asarray(logits, dtype=np.float64)
    return values[:, 0] if values.shape[1] == 1 else np.diff(values, axis=1)[:, 0]


def golden_check(*, directory: Path, detector: ScoringBase) -> None:
    """Raise SelfTestFailed unless the model reproduces its golden outputs on this machine."""
    directory = Path(directory)
    regenerate = REGENERATE.format(name=detector.name)
    path = directory / GOLDEN_FILE
    if not path.is_file():
        raise SelfTestFailed(
            f"model {detector.name} has no golden outputs ({GOLDEN_FILE}); make them with "
            f"`{regenerate}` on a machine where the model is known to be right"
        )
    golden = json.loads(path.read_text())
    if golden["files_sha256"] != _fingerprint(directory):
        raise SelfTestFailed(
            f"model {detector.name}: {GOLDEN_FILE} was made for other weights; regenerate it with `{regenerate}`"
        )
    problems = outputs_compare(expected=golden["outputs"], actual=outputs_compute(detector))
    if problems:
        raise SelfTestFailed(
            f"model {detector.name} {detector.version} refused on this machine: its outputs differ from the "
            f"golden outputs made on {golden['made_on']} ({'; '.join(problems)}). This machine: "
            f"{platform_description()}. A CPU kernel computes this model differently here; it is not served."
        )
