"""`python -m detection.core.state_export CHECKPOINT OUT.npz`: a PyTorch checkpoint's tensors as numpy, in
their order, for the Keras trainer, which may not import torch itself (see detection.core.keras)."""

import sys
from pathlib import Path

import numpy as np

from detection.core.bundle import state_dict_load


def state_export(*, checkpoint: Path, out: Path) -> Path:
    state = state_dict_load(checkpoint)
    np.savez(out, **{key: value.numpy() for key, value in state.items()})
    return Path(out)


if __name__ == "__main__":
    state_export(checkpoint=Path(sys.argv[1]), out=Path(sys.argv[2]))
