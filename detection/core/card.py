"""A bundle's model card (`card.json`) as a typed, frozen value instead of a dict read key by key.

Pure Python (no torch, no TensorFlow, no Django), so web processes read cards too. `ModelCard.from_dict` and
`to_dict` round-trip a card exactly: keys without a field of their own are kept in `extra`, and a key written
as null is kept there too (its field reads None either way), so rewriting a card never loses or adds a key.
Writers still build the JSON payload as a dict and turn it into a card at the boundary (`from_dict`); a changed
card is a new value (`dataclasses.replace`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

# What `from_dict` refuses a card without.
CARD_REQUIRED = ("name", "arch", "version", "image_size", "thresholds")
THRESHOLDS_REQUIRED = ("low", "high")


def _known_and_extra(cls: type, data: dict[str, Any], required: tuple[str, ...]) -> tuple[dict, dict]:
    """`data` split into the keys `cls` has a field for and the rest. A null under a field's key goes to the
    rest, so `to_dict` writes it back while the field reads None (as it does for an absent key)."""
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{cls.__name__} lacks {', '.join(missing)}")
    # A copy: the card is a value, untouched by later changes to the dict it came from.
    data = copy.deepcopy(data)
    names = {f.name for f in fields(cls)} - {"extra"}
    known = {k: v for k, v in data.items() if k in names and (v is not None or k in required)}
    extra = {k: v for k, v in data.items() if k not in known}
    return known, extra


def _fields_dict(value: Any) -> dict[str, Any]:
    """A card part's fields that are set (not None), then its extra keys, as JSON-ready values (a copy)."""
    out = copy.deepcopy(value.extra)
    for f in fields(value):
        item = getattr(value, f.name)
        if f.name == "extra" or item is None:
            continue
        out[f.name] = list(item) if isinstance(item, tuple) else copy.deepcopy(item)
    return out


@dataclass(frozen=True)
class Thresholds:
    """The calibrated band: `high` and above is flagged as AI, from `low` a moderator looks; and how it was
    chosen (metrics.thresholds_for_samples, study.clip_blocks_train)."""

    low: float
    high: float
    false_flag_target: float | None = None  # the promised rate of genuine photos flagged
    false_flag_confidence: float | None = None  # 0.0 where the rate is a point estimate (clip_blocks)
    false_flag_bound_met: bool | None = None
    false_flag_populations: tuple[str, ...] | None = None
    uncertain_false_flag: float | None = None
    chosen_on: str | None = None  # None: the validation split
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        known, extra = _known_and_extra(cls, data, THRESHOLDS_REQUIRED)
        if known.get("false_flag_populations") is not None:
            known["false_flag_populations"] = tuple(known["false_flag_populations"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self)

    def band(self) -> dict[str, float]:
        """{"low", "high"}: the shape of an admin's per-scenery override."""
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class ModelCard:
    """What every bundle's `card.json` holds: its identity, input, calibrated thresholds and the figures and
    provenance a trainer recorded. Fields other than the required five are None where a card has no such key;
    nested figures whose shape differs between trainers (metrics, training, leave_source_out, ...) stay dicts."""

    name: str
    arch: str  # a key of registry._REGISTRY
    version: str
    image_size: int  # the canonical square side (clip_blocks: the working image's short side cap)
    thresholds: Thresholds
    preprocessing: str | None = None  # the input path and normalisation, in words
    head: str | None = None  # a key of nets.HEADS other than the architecture's own ("seed"); None: its own
    split_file: str | None = None  # beside the bundle: the split its thresholds were chosen on
    data_fingerprint: str | None = None
    calibrated: str | None = None  # ISO time of the last `calibrate_detector`
    metrics: dict[str, Any] | None = None  # {"val": {...}, "history": [...], "best_epoch": n}
    training: dict[str, Any] | None = None
    # A frozen ONNX image encoder beside the weights (clip_probe, clip_blocks) and where it came from.
    encoder_file: str | None = None
    encoder_sha256: str | None = None
    encoder_origin: str | None = None
    encoder_derivation: str | None = None
    # Keras bundles describe their network, input and Grad-CAM layers themselves (the registry does not).
    network: str | None = None
    keras: dict[str, Any] | None = None  # input_scale, output, ai_index, input_size, weights_dtype
    gradcam_layers: tuple[str, ...] | None = None
    gradcam_default_layer: str | None = None
    # clip_blocks: crops per image, the probe's configuration, the re-encoding its verdict must survive and
    # its leave-source-out figures.
    crops: int | None = None
    probe: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    leave_source_out: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # every other key, as written

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """ValueError for a card without one of CARD_REQUIRED."""
        known, extra = _known_and_extra(cls, data, CARD_REQUIRED)
        known["thresholds"] = Thresholds.from_dict(known["thresholds"])
        if known.get("gradcam_layers") is not None:
            known["gradcam_layers"] = tuple(known["gradcam_layers"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = _fields_dict(self)
        out["thresholds"] = self.thresholds.to_dict()
        return out
