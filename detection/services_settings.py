"""Writes for the admin's detector settings: which model is active, and per-scenery threshold bands."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from audit.services import audit_record
from common.errors import Invalid
from detection.audit import SettingsAction
from detection.models import ModelSetting, Scenery, ThresholdChange
from detection.selectors import model_names_available


class SettingRefused(Invalid):
    """The setting would not be usable; the message says why."""


CHANGE_ACTIONS = {
    ThresholdChange.Kind.MANUAL: SettingsAction.THRESHOLDS_CHANGE,
    ThresholdChange.Kind.RECALIBRATION: SettingsAction.THRESHOLDS_RECALIBRATE,
    ThresholdChange.Kind.REVERT: SettingsAction.THRESHOLDS_REVERT,
}


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
    *,
    model_name: str,
    thresholds: dict[str, dict[str, float]],
    actor: AbstractBaseUser | None,
    kind: str = ThresholdChange.Kind.MANUAL,
    summary: dict | None = None,
    reverts: ThresholdChange | None = None,
) -> ThresholdChange:
    """Replace a model's per-scenery (low, high) bands; a scenery left out falls back to the model card.
    Every change keeps the bands it replaced (`model_thresholds_revert` puts them back) and is audited."""
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
        setting, _ = ModelSetting.objects.select_for_update().get_or_create(model_name=model_name)
        change = ThresholdChange.objects.create(
            model_name=model_name,
            kind=kind,
            thresholds_before=setting.thresholds,
            thresholds_after=clean,
            summary=summary or {},
            reverts=reverts,
            actor=actor,
        )
        setting.thresholds, setting.updated_by = clean, actor
        setting.save(update_fields=["thresholds", "updated_by", "updated_at"])
        summary_text = ", ".join(f"{s} {b['low']:.2f} to {b['high']:.2f}" for s, b in clean.items())
        audit_record(
            submission_id=None,
            actor=actor,
            action=CHANGE_ACTIONS[kind],
            reason=f"{model_name}: {summary_text or 'model card defaults'} (change #{change.pk})",
        )
    return change


def model_thresholds_revert(*, change_id: int, actor: AbstractBaseUser | None) -> ThresholdChange:
    """Put back the bands a change replaced, as a new change (itself revertible); refused when the model's
    thresholds moved on since, so an older revert never silently undoes a newer change."""
    with transaction.atomic():
        change = ThresholdChange.objects.select_for_update().get(pk=change_id)
        current = ModelSetting.objects.filter(model_name=change.model_name).values_list("thresholds", flat=True).first()
        if (current or {}) != change.thresholds_after:
            raise SettingRefused(
                f"The thresholds of {change.model_name} changed after #{change.pk}; revert the later change first."
            )
        return model_thresholds_update(
            model_name=change.model_name,
            thresholds=change.thresholds_before,
            actor=actor,
            kind=ThresholdChange.Kind.REVERT,
            summary={"reverts": change.pk},
            reverts=change,
        )
