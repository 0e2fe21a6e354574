"""Writes for the admin's detector settings: which model is active, and per-scenery threshold bands."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from audit.services import audit_record
from common.errors import Invalid
from detection.audit import SettingsAction
from detection.models import ModelSetting, Scenery
from detection.selectors import model_names_available


class SettingRefused(Invalid):
    """The setting would not be usable; the message says why."""


def model_setting_activate(*, model_name: str, actor: AbstractBaseUser) -> ModelSetting:
    """Make one shipped model the active one; new uploads are analysed with it from now on."""
    if model_name not in model_names_available():
        raise SettingRefused(f"{model_name} has no trained weights.")
    with transaction.atomic():
        # Deactivate first: the partial unique constraint allows one active row at any moment.
        ModelSetting.objects.select_for_update().filter(is_active=True).exclude(model_name=model_name).update(
            is_active=False
        )
        setting, _ = ModelSetting.objects.update_or_create(
            model_name=model_name, defaults={"is_active": True, "updated_by": actor}
        )
        audit_record(submission_id=None, actor=actor, action=SettingsAction.MODEL_ACTIVATE, reason=model_name)
    return setting


def model_thresholds_update(
    *, model_name: str, thresholds: dict[str, dict[str, float]], actor: AbstractBaseUser
) -> ModelSetting:
    """Replace a model's per-scenery (low, high) bands; a scenery left out falls back to the model card."""
    if model_name not in model_names_available():
        raise SettingRefused(f"{model_name} has no trained weights.")
    clean = {}
    for scenery, band in thresholds.items():
        if scenery not in Scenery.values:
            raise SettingRefused(f"Unknown scenery {scenery!r}.")
        low, high = float(band["low"]), float(band["high"])
        if not 0.0 <= low <= high <= 1.0:
            raise SettingRefused(f"{scenery}: thresholds need 0 ≤ low ≤ high ≤ 1, got {low} and {high}.")
        clean[scenery] = {"low": low, "high": high}
    with transaction.atomic():
        setting, _ = ModelSetting.objects.update_or_create(
            model_name=model_name, defaults={"thresholds": clean, "updated_by": actor}
        )
        summary = ", ".join(f"{s} {b['low']:.2f} to {b['high']:.2f}" for s, b in clean.items()) or "model card defaults"
        audit_record(
            submission_id=None, actor=actor, action=SettingsAction.THRESHOLDS_CHANGE, reason=f"{model_name}: {summary}"
        )
    return setting
