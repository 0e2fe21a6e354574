from django.apps import AppConfig

from audit.actions import actions_register
from moderation.lifecycle import Action


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        # One pixel limit everywhere: what the upload accepts, every later decode (analysis, heatmaps, EXIF
        # reads in web and worker processes) accepts too, instead of Pillow's own 89.5 MP default.
        Image.MAX_IMAGE_PIXELS = settings.UPLOAD_MAX_PIXELS
        actions_register(Action.choices)
        from detection.panels import model_panel_register
        from moderation.views.learning import live_rates_panel, recalibration_panel

        model_panel_register(template="moderation/_live_rates_panel.html", context=live_rates_panel)
        model_panel_register(template="moderation/_recalibration_panel.html", context=recalibration_panel)
