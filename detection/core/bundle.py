"""A trained model on disk: `<weights_dir>/<name>/model.safetensors` (fp16) + `card.json`."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from detection.core.card import ModelCard
from detection.core.files import CARD_FILE, MODEL_FILE, card_load, card_save, file_sha256
from detection.core.nets import net_build

__all__ = [
    "CARD_FILE",
    "MODEL_FILE",
    "bundle_load",
    "bundle_save",
    "card_load",
    "card_save",
    "checkpoint_file",
    "file_sha256",
    "state_dict_load",
]


def bundle_save(*, directory: Path, model: nn.Module, card: ModelCard) -> None:
    """Write the weights as fp16 safetensors and the model card as JSON into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Floats go to fp16 (half the size, no measurable change in probabilities); integer buffers such
    # as BatchNorm's num_batches_tracked stay as they are.
    state = {
        key: (value.detach().half() if value.is_floating_point() else value.detach()).contiguous().cpu()
        for key, value in model.state_dict().items()
    }
    save_file(state, str(directory / MODEL_FILE), metadata={"arch": card.arch, "name": card.name})
    card_save(directory=directory, card=card)
    # safetensors writes 0600; the web and worker users must be able to read the bundle.
    (directory / MODEL_FILE).chmod(0o644)


def bundle_load(*, directory: Path) -> tuple[nn.Module, ModelCard]:
    """Rebuild the net named in the card and load its weights (as fp32), in eval mode."""
    directory = Path(directory)
    card = card_load(directory=directory)
    model = net_build(card.arch, directory=directory, card=card)
    state = {
        key: value.float() if value.is_floating_point() else value
        for key, value in load_file(str(directory / MODEL_FILE)).items()
    }
    model.load_state_dict(state)
    model.eval()
    return model, card


def checkpoint_file(path: Path) -> Path:
    """The weights file of a checkpoint given as a file or as a bundle folder."""
    return Path(path) / MODEL_FILE if Path(path).is_dir() else Path(path)


def state_dict_load(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a local checkpoint: a bundle folder, a .safetensors file or a torch .pt/.pth file."""
    path = checkpoint_file(path)
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
