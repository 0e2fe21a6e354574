from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        # One pixel limit everywhere: what the upload accepts, every later decode (analysis, heatmaps, EXIF
        # reads in web and worker processes) accepts too, instead of Pillow's own 89.5 MP default.
        Image.MAX_IMAGE_PIXELS = settings.UPLOAD_MAX_PIXELS
