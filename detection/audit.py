"""What the audit log records about the detector settings."""

from django.db import models


class SettingsAction(models.TextChoices):
    MODEL_ACTIVATE = "model activated", "Model activated"
    THRESHOLDS_CHANGE = "thresholds changed", "Thresholds changed"
    THRESHOLDS_RECALIBRATE = "thresholds recalibrated", "Thresholds recalibrated on decisions"
    THRESHOLDS_REVERT = "thresholds reverted", "Thresholds reverted"
