from django.apps import AppConfig

from audit.actions import actions_register
from detection.audit import SettingsAction


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Detection"

    def ready(self) -> None:
        actions_register(SettingsAction.choices)
