"""A copy of a bundle whose golden outputs were made on a machine that computes it differently."""

import json
import shutil
from pathlib import Path


def bundle_with_drifted_golden(*, weights_dir: Path, name: str, target: Path) -> Path:
    """`target`/<name>: the bundle as it is, its golden probabilities and logits moved as a wrong kernel
    would move them; returns `target`, a weights folder holding that one bundle."""
    shutil.copytree(Path(weights_dir) / name, Path(target) / name, symlinks=False)
    path = Path(target) / name / "golden.json"
    golden = json.loads(path.read_text())
    outputs = golden["outputs"]
    outputs["probabilities"] = [min(1.0, p + 0.2) if p < 0.5 else p - 0.2 for p in outputs["probabilities"]]
    outputs["logits"] = [[value * 1.5 + 0.3 for value in row] for row in outputs["logits"]]
    path.write_text(json.dumps(golden))
    return Path(target)
