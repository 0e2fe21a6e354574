from django.contrib import admin

from detection.models import Detection, Evidence, ModelSetting


@admin.register(Detection)
class DetectionAdmin(admin.ModelAdmin):
    list_display = ["submission", "model_name", "model_version", "ai_probability", "verdict", "latency_ms"]
    list_filter = ["model_name", "verdict"]


@admin.register(Evidence)
class EvidenceAdmin(admin.ModelAdmin):
    list_display = ["submission", "kind", "key", "suggests"]
    list_filter = ["kind", "suggests"]


@admin.register(ModelSetting)
class ModelSettingAdmin(admin.ModelAdmin):
    list_display = ["model_name", "is_active", "updated_by", "updated_at"]
